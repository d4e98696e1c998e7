"""Per-problem policy: keep only the ``curate.length.shortest`` shortest correct traces of each
problem (reason ``not_shortest``), across teachers: shortest-correct-of-K. Lengths are in
``curate.length.unit`` (``base.trace_length``); unhinted traces come before hinted ones, as in the
best-first order, and ties keep that order. Survivors keep their given order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TRAIN, trace_length


@dataclass(frozen=True)
class Shortest:
    n: int
    unit: str = "tokens"
    name: ClassVar[str] = "not_shortest"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)
    sign: ClassVar[int] = 1  # +1: shortest first; -1: longest first (longest.py)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Shortest | None:
        return cls(cfg.length.shortest, cfg.length.unit) if cfg.length.shortest > 0 else None

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        ranked = sorted(range(len(traces)), key=lambda i: (traces[i].hinted, self.sign * trace_length(traces[i], self.unit), i))
        keep = set(ranked[: self.n])
        return ([t for i, t in enumerate(traces) if i in keep],
                [(t, self.name) for i, t in enumerate(traces) if i not in keep])

    def report(self) -> dict[str, Any]:
        return {"n": self.n, "unit": self.unit}
