"""Per-problem policy for teacher mixtures: keep only the traces of the best teacher of each
problem (reason ``not_best_teacher``), when ``curate.teachers.best``.

Traces carry their ``teacher``. Among the teachers that still have a correct trace for the
problem, the best is the one with the highest pass rate on it over its unhinted samples; ties go
to the teacher with the higher pass rate over all problems, then to the one whose trace comes
first. With one teacher this keeps everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import CurateConfig
from ..errors import ConfigError
from ..records import Problem, Trace, Verdict
from .base import NO_GOLD, TRAIN, CurateContext


@dataclass
class TeachersConfig:
    """``curate.teachers``: choosing among several teachers' traces (traces carry ``teacher``)."""

    best: bool = False  # per problem, keep only the traces of the teacher with the highest pass rate on it
    # at most this many kept traces per problem from each teacher ("*": every teacher not named)
    quota: dict[str, int] = field(default_factory=dict)
    # per problem, the traces of one teacher drawn with these weights ({long: 1, short: 4}: a 1:4 mix)
    share: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for k, v in self.quota.items()):
            raise ConfigError("curate.teachers.quota maps teacher names (or '*') to counts >= 0")
        if self.share and (not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and v >= 0 for k, v in self.share.items()) or not sum(self.share.values()) > 0):
            raise ConfigError("curate.teachers.share maps teacher names to weights >= 0, at least one above 0 "
                              "(e.g. {long: 1, short: 4})")


@dataclass
class BestTeacher:
    rates: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (problem, teacher) -> pass rate
    overall: dict[str, float] = field(default_factory=dict)  # teacher -> pass rate over every unhinted sample
    chosen: Counter = field(default_factory=Counter)
    name: ClassVar[str] = "not_best_teacher"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> BestTeacher | None:
        return cls() if cfg.teachers.best else None

    def prepare(self, ctx: CurateContext) -> None:
        totals: dict[str, list[int]] = {}
        for t in ctx.traces:
            v = ctx.verdicts[t.id]
            if not t.hinted and v.reason != NO_GOLD:
                n_ok = totals.setdefault(t.teacher, [0, 0])
                n_ok[0] += 1
                n_ok[1] += v.passed
        self.overall = {teacher: ok / n for teacher, (n, ok) in totals.items()}
        for pid, traces in ctx.by_problem.items():
            for teacher in {t.teacher for t in traces}:
                self.rates[(pid, teacher)] = ctx.pass_rate(pid, teacher)

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        first = {}
        for i, t in enumerate(traces):
            first.setdefault(t.teacher, i)

        def rank(teacher: str) -> tuple[float, float, int]:
            rate = self.rates.get((problem.id, teacher))
            return (-1.0 if rate is None else rate), self.overall.get(teacher, -1.0), -first[teacher]

        best = max(first, key=rank)
        self.chosen[best] += 1
        return [t for t in traces if t.teacher == best], [(t, self.name) for t in traces if t.teacher != best]

    def report(self) -> dict[str, Any]:
        return {"overall_pass_rate": {k: round(v, 4) for k, v in sorted(self.overall.items())},
                "problems_per_teacher": dict(self.chosen.most_common())}
