"""Drop traces whose generation failed (``finish_reason == "error"``) or produced no text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem, Trace, Verdict
from .base import TracePolicy


@dataclass(frozen=True)
class DropErrored(TracePolicy):
    name: ClassVar[str] = "errored"

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        if trace.finish_reason == "error":
            return False, "generation_error"
        if not trace.raw.strip():
            return False, "empty"
        return True, ""
