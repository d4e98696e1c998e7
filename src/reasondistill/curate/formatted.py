"""Drop traces without a final-answer line (``Answer: X`` or ``\\boxed{X}``), when
``curate.require_format``: a trace that passed only through the last-number fallback would teach
the student to skip the format that evaluation asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from ..verifiers.answers import extract_answer


@dataclass(frozen=True)
class RequireFormat:
    name: ClassVar[str] = "formatted"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> RequireFormat | None:
        return cls() if cfg.require_format else None

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        _, formatted = extract_answer(trace.raw, fallback_last_number=False)
        return (True, "") if formatted else (False, "unformatted")
