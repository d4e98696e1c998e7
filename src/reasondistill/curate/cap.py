"""Per-problem policy: keep at most ``curate.max_per_problem`` correct traces (reason
``over_cap``), the first ones of the best-first order (a tailored-learning correction, then unhinted,
then shorter, then file order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TRAIN


def preference_key(trace: Trace, position: int) -> tuple[bool, bool, int, int]:
    """Sort key, best first: a teacher's correction of the student's own mistake (``generate.tailored``:
    what tailored learning trains on, and the chosen side of its pairs), then unhinted, then fewer
    characters, then earlier in the traces file."""
    return trace.meta.get("hint") != "tailored", trace.hinted, len(trace.raw.strip()), position


@dataclass(frozen=True)
class Cap:
    limit: int
    name: ClassVar[str] = "over_cap"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Cap:
        return cls(cfg.max_per_problem)

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        return list(traces[: self.limit]), [(t, self.name) for t in traces[self.limit:]]
