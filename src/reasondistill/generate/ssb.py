"""SSB (semantic soft bootstrapping) hints: the teacher sees the question, the gold answer and the
student's most common WRONG answer, and writes the rationale the student then learns from under
the question alone.

The hinted prompt replaces the plain one for every sample of a problem the student got wrong
at least once with a stated answer (``generate.probe``); problems it always solved, or never
answered, are asked plainly. The traces are ``hinted`` and name the hint in ``meta``, so curation
computes pass rates without them and trains them under the plain prompt; with
``generate.top_logprobs`` their stored logprobs are those of the hinted generation, one row per
completion token, which offline KD lines up behind the un-hinted prompt.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ..config import GenerateConfig, PromptConfig
from ..prompts import ssb_prompt
from ..records import Problem, Trace
from .base import Mode
from .student_answers import StudentAnswers

HINT = "ssb"


def wrong_answers(problems: list[Problem], answers: dict[str, StudentAnswers]) -> dict[str, str]:
    """``{problem_id: the student's most common wrong answer}`` for the problems that have a gold
    answer (the hint shows it) and at least one wrong stated student answer."""
    out = {}
    for p in problems:
        found = answers[p.id].most_common_wrong() if p.answer.strip() and p.id in answers else None
        if found is not None:
            out[p.id] = found[0]
    return out


def prompt(problem: Problem, wrong: dict[str, str], cfg: PromptConfig) -> str | None:
    """The SSB prompt for ``problem``, or None when it gets the plain one."""
    return ssb_prompt(problem, wrong[problem.id], cfg) if problem.id in wrong else None


def annotate(trace: Trace, wrong: dict[str, str]) -> Trace:
    """Record the hint and the wrong answer it showed on a hinted trace."""
    if not trace.hinted or trace.problem_id not in wrong:
        return trace
    return dataclasses.replace(trace, meta={**trace.meta, "hint": HINT, "wrong_answer": wrong[trace.problem_id]})


class SsbHints(Mode):
    """``generate.hints: ssb``: the first pass asks a problem the student got wrong with the hint."""

    name: ClassVar[str] = HINT
    switch: ClassVar[str] = "generate.hints=ssb"
    probes: ClassVar[bool] = True

    def __init__(self, cfg: PromptConfig) -> None:
        self.cfg = cfg
        self.answers: dict[str, StudentAnswers] = {}
        self.wrong: dict[str, str] = {}

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> SsbHints | None:
        return cls(cfg.prompt) if cfg.hints == HINT else None

    def start(self, problems: list[Problem], answers: dict[str, StudentAnswers]) -> None:
        self.answers, self.wrong = answers, wrong_answers(problems, answers)

    def hint(self, problem: Problem) -> str | None:
        return prompt(problem, self.wrong, self.cfg)

    def annotate(self, trace: Trace) -> Trace:
        return annotate(trace, self.wrong)

    def outputs(self, traces: list[Trace]) -> dict[str, Any]:
        return {"problems_probed": sum(bool(a.samples) for a in self.answers.values()),
                "with_wrong_answer": len(self.wrong),
                "hinted_traces": sum(t.meta.get("hint") == HINT for t in traces)}
