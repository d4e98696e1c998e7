"""Drop traces cut off by the token limit (``finish_reason == "length"``), when ``curate.drop_truncated``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict


@dataclass(frozen=True)
class DropTruncated:
    name: ClassVar[str] = "truncated"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> DropTruncated | None:
        return cls() if cfg.drop_truncated else None

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        return (False, "truncated") if trace.finish_reason == "length" else (True, "")
