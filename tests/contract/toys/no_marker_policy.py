"""Toy per-trace curation policy: drop traces that contain a marker string. One file; the test
adds its row to ``POLICIES``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reasondistill.config import CurateConfig
from reasondistill.records import Problem, Trace, Verdict

MARKER = "FORBIDDEN"


@dataclass(frozen=True)
class DropMarked:
    name: ClassVar[str] = "marked"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> DropMarked:
        return cls()

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        return (False, "marked") if MARKER in trace.raw else (True, "")
