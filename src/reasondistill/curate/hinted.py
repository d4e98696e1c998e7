"""Drop STaR rationalizations (traces written with the gold answer as a hint) unless
``curate.include_hinted``. Kept ones are trained under the plain prompt, without the hint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TracePolicy


@dataclass(frozen=True)
class DropHinted(TracePolicy):
    name: ClassVar[str] = "hinted"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> DropHinted | None:
        return None if cfg.include_hinted else cls()

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        return (False, "hinted") if trace.hinted else (True, "")
