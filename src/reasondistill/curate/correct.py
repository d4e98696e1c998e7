"""Keep only traces the verifier passed. Failed ones are not lost: the runner writes traces
refused with reason ``incorrect`` to ``negatives.jsonl``. A failed trace that was cut off by the
token limit is no useful negative (it usually has no answer at all), so it is ``truncated``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import INCORRECT


@dataclass(frozen=True)
class KeepCorrect:
    name: ClassVar[str] = "correct"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> KeepCorrect:
        return cls()

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        if verdict.passed:
            return True, ""
        return False, "truncated" if trace.finish_reason == "length" else INCORRECT
