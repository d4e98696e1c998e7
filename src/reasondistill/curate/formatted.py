"""Drop traces without a final-answer line (``Answer: X`` or ``\\boxed{X}``), when
``curate.require_format``: a trace that passed only through the last-number fallback would teach
the student to skip the format that evaluation asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem, Trace, Verdict
from .base import TracePolicy
from ..grading.answers import extract_answer


@dataclass(frozen=True)
class RequireFormat(TracePolicy):
    name: ClassVar[str] = "formatted"
    switch: ClassVar[str] = "require_format"

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        _, formatted = extract_answer(trace.raw, fallback_last_number=False)
        return (True, "") if formatted else (False, "unformatted")
