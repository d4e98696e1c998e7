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

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import CurateContext, TracePolicy, trace_length


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
