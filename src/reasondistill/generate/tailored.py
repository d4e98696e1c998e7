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
from pathlib import Path
from typing import Any, ClassVar

from .. import io
from ..config import GenerateConfig
from ..layout import Layout
from ..prompts import ANSWER_PREFIX, tailored_prompt
from ..records import EvalSample, Problem, Trace
from .base import Drawn, Mode, Pass, Sampling
from .student_answers import StudentAnswers

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


class Tailored(Mode):
    """``generate.tailored``: a follow-up pass for the student's failures; the student's wrong
    solutions are written to ``student_traces.jsonl`` once every teacher has answered."""

    name: ClassVar[str] = HINT
    switch: ClassVar[str] = "generate.tailored=true"
    probes: ClassVar[bool] = True

    def __init__(self, cfg: GenerateConfig) -> None:
        self.cfg = cfg
        self.answers: dict[str, StudentAnswers] = {}
        self.asked: list[tuple[Problem, EvalSample]] = []
        self.fresh: list[Trace] = []  # every teacher's corrections
        self.passed: set[str] = set()

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> Tailored | None:
        return cls(cfg) if cfg.tailored else None

    def start(self, problems: list[Problem], answers: dict[str, StudentAnswers]) -> None:
        self.answers, self.asked = answers, failed(problems, answers, self.cfg.probe.fail_below)

    def follow_up(self, ctx: Sampling, drawn: Drawn) -> Pass | None:
        if not self.asked:
            return None
        routed = {p.id for p in ctx.problems}
        shown = {p.id: w for p, w in self.asked}
        reqs = [ctx.request(p, prompt(p, w, self.cfg), drawn.next_idx + j, hinted=True)
                for p, w in self.asked if p.id in routed for j in range(self.cfg.tailored_samples)]

        def mark(trace: Trace) -> Trace:  # kept, and verified, for the manifest and the student traces
            self.fresh.append(marked := annotate(trace, shown[trace.problem_id]))
            self.passed |= ctx.passed([marked])
            return marked

        return Pass(f"tailored ({ctx.label})", reqs, width=self.cfg.tailored_samples, annotate=mark)

    def outputs(self, traces: list[Trace]) -> dict[str, Any]:
        return counts(self.answers, self.asked, self.fresh, self.passed)

    def write(self, layout: Layout) -> list[Path]:
        io.write_jsonl(layout.student_traces, [
            student_trace(p, w, self.cfg.probe.model, [t.id for t in self.fresh if t.problem_id == p.id])
            for p, w in self.asked])
        return [layout.student_traces]
