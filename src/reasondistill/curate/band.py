"""Per-problem policy: keep problems whose teacher pass rate lies in ``curate.pass_rate_band``.

The pass rate is the teacher's over a problem's UNHINTED samples (``pass_rates.jsonl``). With the
default exclusive band, ``[0, 1]`` keeps ``0 < p < 1``, the edge of the teacher's competence: the
problems it solves only sometimes; ``curate.pass_rate_inclusive`` makes it ``lo <= p <= hi``. Every
trace of a problem outside the band is dropped, correct ones and negatives alike, with reason
``too_easy`` (above the band), ``too_hard`` (below it) or ``no_pass_rate`` (no unhinted sample).
The problems in the band are also written to ``selected_problems.jsonl`` (``keeps_problem``), the
same selection as prompts for GRPO.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import NEGATIVES, TRAIN, CurateContext


@dataclass
class PassRateBand:
    lo: float
    hi: float
    inclusive: bool = False
    rates: dict[str, float | None] = field(default_factory=dict)
    name: ClassVar[str] = "out_of_band"
    scope: ClassVar[tuple[str, ...]] = (TRAIN, NEGATIVES)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> PassRateBand | None:
        band = cfg.pass_rate_band
        return None if band is None else cls(float(band[0]), float(band[1]), cfg.pass_rate_inclusive)

    def prepare(self, ctx: CurateContext) -> None:
        self.rates = {pid: ctx.pass_rate(pid) for pid in ctx.problems}

    def verdict(self, problem_id: str) -> str:
        """``""`` in the band, else the reason it is not."""
        rate = self.rates.get(problem_id)
        if rate is None:
            return "no_pass_rate"
        if self.inclusive:
            return "too_hard" if rate < self.lo else "too_easy" if rate > self.hi else ""
        return "too_hard" if rate <= self.lo else "too_easy" if rate >= self.hi else ""

    def keeps_problem(self, problem_id: str) -> bool:
        return not self.verdict(problem_id)

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        reason = self.verdict(problem.id)
        return ([], [(t, reason) for t in traces]) if reason else (list(traces), [])

    def report(self) -> dict[str, Any]:
        outcome = Counter(self.verdict(pid) or "in_band" for pid in self.rates)
        return {"band": [self.lo, self.hi], "inclusive": self.inclusive, "problems": len(self.rates),
                **{k: outcome[k] for k in ("in_band", "too_easy", "too_hard", "no_pass_rate")}}
