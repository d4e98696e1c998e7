"""Keep only traces the verifier passed. Failed ones are not lost: the runner writes traces
refused with reason ``incorrect`` to ``negatives.jsonl``. A failed trace that was cut off by the
token limit is no useful negative (it usually has no answer at all), so it is ``truncated``. A
trace nobody could grade (its problem has no gold answer and ``curate.self_consistency`` is off)
is neither right nor wrong: ``no_gold``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem, Trace, Verdict
from .base import INCORRECT, NO_GOLD, TracePolicy


@dataclass(frozen=True)
class KeepCorrect(TracePolicy):
    name: ClassVar[str] = "correct"

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        if verdict.passed:
            return True, ""
        if verdict.reason == NO_GOLD:
            return False, NO_GOLD
        return False, "truncated" if trace.finish_reason == "length" else INCORRECT
