"""Drop traces cut off by the token limit (``finish_reason == "length"``), when ``curate.drop_truncated``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem, Trace, Verdict
from .base import TracePolicy


@dataclass(frozen=True)
class DropTruncated(TracePolicy):
    name: ClassVar[str] = "truncated"
    switch: ClassVar[str] = "drop_truncated"

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        return (False, "truncated") if trace.finish_reason == "length" else (True, "")
