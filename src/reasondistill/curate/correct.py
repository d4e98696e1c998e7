"""Keep only traces the verifier passed. Failed ones are not lost: the runner writes traces
refused with reason ``incorrect`` to ``negatives.jsonl``. A failed trace that was cut off by the
token limit is no useful negative (it usually has no answer at all), so it is ``truncated``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem, Trace, Verdict
from .base import INCORRECT, TracePolicy


@dataclass(frozen=True)
class KeepCorrect(TracePolicy):
    name: ClassVar[str] = "correct"

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        if verdict.passed:
            return True, ""
        return False, "truncated" if trace.finish_reason == "length" else INCORRECT
