"""Tailored learning: learn from the student's own mistakes.

The student answers the training problems first (the probe stage); each problem it fails
(pass rate below ``generate.probe.fail_below``) goes back to the teacher with the student's wrong
solution (``prompts/tailored.txt``: no gold answer) for ``generate.tailored_samples`` fresh
rationales. These are ``hinted`` traces (meta ``hint: tailored``) and, verified like any other,
reach the curated set. The student's wrong solutions go to ``student_traces.jsonl``, each listing
the teacher traces that answer it (``meta.corrections``), so the pairs step can add
(wrong, corrected) pairs for the preference objectives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import GenerateConfig
from ..prompts import ANSWER_PREFIX, tailored_prompt
from ..records import EvalSample, Problem, Trace
from .student import StudentAnswers

HINT = "tailored"
STUDENT = "student"


def student_trace_id(problem_id: str, sample_idx: int) -> str:
    return f"{problem_id}/{STUDENT}/w{sample_idx}"


def failed(problems: list[Problem], answers: dict[str, StudentAnswers], fail_below: float
           ) -> list[tuple[Problem, EvalSample]]:
    """The problems the student fails, each with the wrong sample to show the teacher: one with its
    most common wrong answer, else its first wrong one. Problems without samples, or whose failed
    samples have no text, are left out."""
    out = []
    for p in problems:
        got = answers.get(p.id)
        if got is None or not got.samples or got.pass_rate >= fail_below:
            continue
        common = got.most_common_wrong()
        wrong = common[1] if common else next(iter(got.wrong()), None)
        if wrong is not None:
            out.append((p, wrong))
    return out


def prompt(problem: Problem, wrong: EvalSample, cfg: GenerateConfig) -> str:
    return tailored_prompt(problem, wrong.text.strip(), cfg.prompt)


def student_trace(problem: Problem, sample: EvalSample, model: str, corrections: list[str]) -> Trace:
    """The student's wrong solution as a trace (the rejected side of the tailored pairs)."""
    text = sample.text
    cut = text.rfind(ANSWER_PREFIX)
    return Trace(id=student_trace_id(problem.id, sample.sample_idx), problem_id=problem.id, teacher=STUDENT,
                 sample_idx=sample.sample_idx, reasoning=text[:cut].rstrip() if cut >= 0 else text,
                 answer_text=sample.extracted or "", raw=text, finish_reason=sample.finish_reason,
                 usage={"completion_tokens": sample.completion_tokens},
                 meta={"model": model, "corrections": corrections})


def annotate(trace: Trace, wrong: EvalSample) -> Trace:
    """Record the hint and the student answer it showed."""
    return dataclasses.replace(trace, meta={**trace.meta, "hint": HINT,
                                            "student_trace": student_trace_id(trace.problem_id, wrong.sample_idx),
                                            "wrong_answer": wrong.extracted})


def counts(answers: dict[str, StudentAnswers], asked: list[tuple[Problem, EvalSample]], traces: list[Trace],
           passed: set[str]) -> dict[str, Any]:
    """The manifest's ``tailored`` block: problems evaluated, failed, corrected (a verified fresh rationale)."""
    return {"problems_evaluated": sum(bool(a.samples) for a in answers.values()), "failed": len(asked),
            "traces": len(traces), "traces_correct": sum(t.id in passed for t in traces),
            "corrected": len({t.problem_id for t in traces if t.id in passed})}
