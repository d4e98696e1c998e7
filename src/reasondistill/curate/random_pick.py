"""Per-problem policy: keep ``curate.random`` correct traces of each problem drawn at random (reason
``not_drawn``): the baseline any smarter selection (student-aware, shortest) has to beat at the
same trace count. Seeded per problem (``curate.random_seed`` and the problem id), so adding a
problem or a trace elsewhere never changes another problem's draw. Survivors keep their order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TRAIN


@dataclass(frozen=True)
class RandomPick:
    n: int
    seed: int = 0
    name: ClassVar[str] = "not_drawn"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> RandomPick | None:
        return cls(cfg.random, cfg.random_seed) if cfg.random > 0 else None

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        rng = random.Random(f"{self.seed}:{problem.id}")
        keep = set(rng.sample(range(len(traces)), min(self.n, len(traces))))
        return ([t for i, t in enumerate(traces) if i in keep],
                [(t, self.name) for i, t in enumerate(traces) if i not in keep])

    def report(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed}
