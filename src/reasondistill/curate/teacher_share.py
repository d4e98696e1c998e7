"""Per-problem policy for teacher mixtures at a set ratio: each problem keeps the traces of one
teacher, drawn with the weights of ``curate.teachers.share`` (reason ``not_share_teacher``), e.g.
``{long: 1, short: 4}`` for a 1:4 long:short mix (the learnability-gap paper's Mix Distillation).

The draw is among the teachers that have a trace for the problem (so the ratio is exact in
expectation where every teacher solves every problem, as program teachers do), seeded per problem
(``curate.random_seed`` and the problem id), so a problem's teacher never depends on the others.
``"*"`` weighs every teacher not named; a teacher with no weight is never drawn. The report
counts the problems each teacher got."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TRAIN


@dataclass
class TeacherShare:
    share: tuple[tuple[str, float], ...]
    seed: int = 0
    chosen: Counter = field(default_factory=Counter)
    name: ClassVar[str] = "not_share_teacher"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> TeacherShare | None:
        s = cfg.teachers.share
        return cls(tuple(sorted(s.items())), cfg.random_seed) if s else None

    def weight(self, teacher: str) -> float:
        table = dict(self.share)
        return table.get(teacher, table.get("*", 0.0))

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        names = sorted(n for n in {t.teacher for t in traces} if self.weight(n) > 0)
        if not names:
            return [], [(t, self.name) for t in traces]
        pick = random.Random(f"{self.seed}:{problem.id}").choices(names, [self.weight(n) for n in names])[0]
        self.chosen[pick] += 1
        return [t for t in traces if t.teacher == pick], [(t, self.name) for t in traces if t.teacher != pick]

    def report(self) -> dict[str, Any]:
        return {"share": dict(self.share), "problems_per_teacher": dict(sorted(self.chosen.items()))}
