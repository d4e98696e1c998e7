"""Drop correct traces over a length budget (reason ``over_budget``), when ``curate.length.budget``
or ``curate.length.budget_by_difficulty`` is set.

Lengths are in ``curate.length.unit`` (``base.trace_length``). A problem's budget comes from the
first ``budget_by_difficulty`` row ``[max_difficulty, budget]`` whose bound is at least its
difficulty (1 - the teacher's unhinted pass rate), so easy problems can get short budgets and hard
ones long; a problem no row covers (or without a pass rate) gets ``budget`` (or none). Placed after
``correct``: only traces that would be trained on are measured, and wrong ones stay negatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import CurateConfig, check_choice
from ..errors import ConfigError
from ..records import Problem, Trace, Verdict
from .base import CurateContext, TracePolicy, trace_length


@dataclass
class LengthConfig:
    """``curate.length``: length-based selection. Lengths are in ``unit``: ``tokens`` (the teacher's
    ``usage.completion_tokens`` recorded in the trace; its word count where a backend recorded none)
    or ``chars`` (of the stripped text). Off by default."""

    unit: str = "tokens"  # tokens | chars
    shortest: int = 0  # > 0: keep only the n shortest correct traces of each problem, across teachers
    longest: int = 0  # > 0: keep only the n longest correct traces of each problem (to compare with shortest)
    budget: int | None = None  # drop correct traces longer than this (reason over_budget)
    # per-difficulty budgets, [[max_difficulty, budget], ...] in increasing difficulty (1 - pass rate);
    # the first row whose bound is >= a problem's difficulty sets its budget (else `budget` applies)
    budget_by_difficulty: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_choice("curate.length.unit", self.unit, ("tokens", "chars"))
        if self.shortest < 0 or self.longest < 0:
            raise ConfigError("curate.length.shortest and curate.length.longest must be >= 0")
        if self.shortest and self.longest:
            raise ConfigError("curate.length: set shortest or longest, not both")
        if self.budget is not None and self.budget < 1:
            raise ConfigError("curate.length.budget must be >= 1")
        bounds = []
        for row in self.budget_by_difficulty:
            if (not isinstance(row, list) or len(row) != 2 or not all(isinstance(x, (int, float)) for x in row)
                    or not 0 <= row[0] <= 1 or row[1] < 1):
                raise ConfigError("curate.length.budget_by_difficulty rows are [max_difficulty in [0, 1], "
                                  f"budget >= 1], got {row!r}")
            bounds.append(row[0])
        if bounds != sorted(bounds):
            raise ConfigError("curate.length.budget_by_difficulty rows must go from easy to hard (increasing bounds)")

    @property
    def budgeted(self) -> bool:
        return self.budget is not None or bool(self.budget_by_difficulty)


@dataclass
class DropOverBudget(TracePolicy):
    unit: str
    budget: int | None
    by_difficulty: tuple[tuple[float, int], ...] = ()
    difficulty: dict[str, float | None] = field(default_factory=dict)
    name: ClassVar[str] = "over_budget"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> DropOverBudget | None:
        length = cfg.length
        if not length.budgeted:
            return None
        rows = tuple((float(d), int(b)) for d, b in length.budget_by_difficulty)
        return cls(length.unit, length.budget, rows)

    def prepare(self, ctx: CurateContext) -> None:
        for pid in ctx.problems:
            rate = ctx.pass_rate(pid)
            self.difficulty[pid] = None if rate is None else 1.0 - rate

    def budget_for(self, problem_id: str) -> int | None:
        difficulty = self.difficulty.get(problem_id)
        if difficulty is not None:
            for bound, budget in self.by_difficulty:
                if difficulty <= bound + 1e-9:
                    return budget
        return self.budget

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        budget = self.budget_for(problem.id)
        if budget is not None and trace_length(trace, self.unit) > budget:
            return False, self.name
        return True, ""

    def report(self) -> dict[str, Any]:
        return {"unit": self.unit, "budget": self.budget, "budget_by_difficulty": [list(r) for r in self.by_difficulty]}
