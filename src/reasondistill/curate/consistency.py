"""Self-consistency for problems without a gold answer (empty ``answer``), when
``curate.self_consistency.min_share`` is set.

The verifier cannot grade such traces (verdict reason ``no_gold``). In ``prepare`` the majority
answer over a problem's unhinted samples becomes its pseudo-label, with its vote share (majority
votes / samples; failed generations and samples without an answer are votes for nothing). When the
share is at least ``min_share``, the majority has at least ``min_votes`` votes and no other answer
ties it, every trace of the problem is re-graded against the pseudo-label (verifier
``self_consistency``, reason ``agrees`` / ``disagrees``): agreeing ones are then correct, the others
incorrect (negatives). Otherwise the problem's traces are rejected here with reason
``low_agreement``. The label, its share and votes go to the problem's ``pass_rates.jsonl`` row
(``pseudo_label``, ``vote_share``, ``votes``, ``samples``, ``pseudo_labelled``).

Answers are compared by exact value when numeric (``0.5`` = ``1/2``), else after normalisation.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from ..config import CurateConfig
from ..errors import ConfigError
from ..records import Problem, Trace, Verdict
from ..grading.answers import as_number, normalize
from .base import NO_GOLD, CurateContext, TracePolicy

VERIFIER = "self_consistency"


def answer_key(answer: str) -> Fraction | str:
    value = as_number(answer)
    return value if value is not None else normalize(answer)


@dataclass
class SelfConsistencyConfig:
    """``curate.self_consistency``: for problems without a gold answer (empty ``answer``), the majority
    answer over the unhinted samples is the pseudo-label; traces that agree with it count as correct
    when its vote share (majority votes / samples) is at least ``min_share``. Off while ``min_share``
    is None (such problems' traces are then rejected with reason ``no_gold``)."""

    min_share: float | None = None
    min_votes: int = 2  # fewer votes for the majority answer: no pseudo-label

    def __post_init__(self) -> None:
        if self.min_share is not None and not 0 < self.min_share <= 1:
            raise ConfigError("curate.self_consistency.min_share must be in (0, 1]")
        if self.min_votes < 1:
            raise ConfigError("curate.self_consistency.min_votes must be >= 1")


@dataclass
class SelfConsistency(TracePolicy):
    min_share: float
    min_votes: int = 2
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: ClassVar[str] = "self_consistency"

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> SelfConsistency | None:
        sc = cfg.self_consistency
        return None if sc.min_share is None else cls(sc.min_share, sc.min_votes)

    def label(self, traces: list[Trace], verdicts: dict[str, Verdict]) -> dict[str, Any]:
        """The pseudo-label of one problem from its unhinted ``traces``."""
        samples = [t for t in traces if not t.hinted]
        votes: Counter = Counter()
        spelled: dict[Any, str] = {}
        for t in samples:
            answer = verdicts[t.id].extracted
            if t.finish_reason == "error" or answer is None:
                continue
            key = answer_key(answer)
            votes[key] += 1
            spelled.setdefault(key, answer)
        if not votes:
            return {"pseudo_label": None, "vote_share": 0.0, "votes": 0, "samples": len(samples),
                    "pseudo_labelled": False}
        (key, top), *rest = votes.most_common()
        share = top / len(samples)
        labelled = share >= self.min_share and top >= self.min_votes and not (rest and rest[0][1] == top)
        return {"pseudo_label": spelled[key], "vote_share": round(share, 4), "votes": top, "samples": len(samples),
                "pseudo_labelled": labelled, "_key": key}

    def prepare(self, ctx: CurateContext) -> None:
        for pid, problem in ctx.problems.items():
            if problem.answer.strip():
                continue
            traces = ctx.by_problem.get(pid, [])
            info = self.label(traces, ctx.verdicts)
            key = info.pop("_key", None)
            self.labels[pid] = info
            ctx.problem_notes[pid].update(info)
            if not info["pseudo_labelled"]:
                continue
            for t in traces:
                v = ctx.verdicts[t.id]
                agrees = t.finish_reason != "error" and v.extracted is not None and answer_key(v.extracted) == key
                ctx.verdicts[t.id] = dataclasses.replace(v, verifier=VERIFIER, score=float(agrees), passed=agrees,
                                                         reason="agrees" if agrees else "disagrees")

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
        if verdict.reason == NO_GOLD:  # not pseudo-labelled (or prepare never ran)
            return False, "low_agreement"
        return True, ""

    def report(self) -> dict[str, Any]:
        return {"min_share": self.min_share, "min_votes": self.min_votes, "problems_without_gold": len(self.labels),
                "pseudo_labelled": sum(info["pseudo_labelled"] for info in self.labels.values())}
