"""Per-problem policy for teacher mixtures: keep at most ``curate.teachers.quota[teacher]`` correct
traces of each teacher per problem (reason ``over_teacher_quota``); ``"*"`` sets the quota of every
teacher not named, and a teacher with no quota is not limited. The first ones of the best-first
order are kept. Off while the quota table is empty."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import TRAIN


@dataclass(frozen=True)
class TeacherQuota:
    quota: tuple[tuple[str, int], ...]
    name: ClassVar[str] = "over_teacher_quota"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> TeacherQuota | None:
        q = cfg.teachers.quota
        return cls(tuple(sorted(q.items()))) if q else None

    def limit(self, teacher: str) -> int | None:
        table = dict(self.quota)
        return table.get(teacher, table.get("*"))

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        used: Counter = Counter()
        kept, over = [], []
        for t in traces:
            limit = self.limit(t.teacher)
            if limit is not None and used[t.teacher] >= limit:
                over.append((t, self.name))
            else:
                kept.append(t)
                used[t.teacher] += 1
        return kept, over

    def report(self) -> dict[str, Any]:
        return {"quota": dict(self.quota)}
