"""Determinism self-test of a scoring teacher, run before training depends on it.

A served teacher whose logprobs move from call to call (batch-dependent kernels, a sampler
leaking into scoring, another model behind a load balancer) gives the student a target that
is noise at the scale of the differences. :func:`selftest` scores the same texts three ways
(together, in reverse order, each alone) and compares, token by token, the top-1 logprob and
the scored token ids; a difference beyond ``tolerance`` refuses the teacher before any step is
spent on it. Its :class:`SelfTestResult` goes into the train manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from .base import Backend, ScoreItem, ScoreResult

MAX_ITEMS = 4  # texts scored; each is scored three times


class TeacherNotDeterministic(ConfigError):
    """The teacher scored the same text differently."""


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    passed: bool
    max_diff: float  # largest |difference| of a token's top-1 logprob between two scorings
    tolerance: float
    n_items: int
    n_tokens: int
    teacher: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def top1(entry: dict[str, Any]) -> float:
    return max(float(v) for _, v in entry["top"]) if entry["top"] else float(entry["logprob"])


def difference(a: ScoreResult, b: ScoreResult) -> float:
    """Largest top-1 logprob difference of two scorings of one text; ``inf`` when the tokens differ."""
    if a.token_ids != b.token_ids:
        return math.inf
    return max((abs(top1(x) - top1(y)) for x, y in zip(a.logprobs, b.logprobs)), default=0.0)


def selftest(backend: Backend, items: Sequence[ScoreItem], *, tolerance: float, top_k: int = 1) -> SelfTestResult:
    """Score up to :data:`MAX_ITEMS` of ``items`` together, reversed and alone; raise
    :class:`TeacherNotDeterministic` naming the difference when it exceeds ``tolerance``."""
    items = list(items)[:MAX_ITEMS]
    if not items:
        raise ConfigError("the teacher self-test needs at least one text to score")
    together = backend.score(items, top_k)
    reversed_ = backend.score(items[::-1], top_k)[::-1]
    alone = [backend.score([it], top_k)[0] for it in items]
    worst, where = 0.0, 0
    for i, first in enumerate(together):
        for other in (reversed_[i], alone[i]):
            d = difference(first, other)
            if d > worst:
                worst, where = d, i
    n_tokens = sum(len(r.token_ids) for r in together)
    result = SelfTestResult(worst <= tolerance, worst, tolerance, len(items), n_tokens, backend.identity)
    if not result.passed:
        what = ("tokenized the same text differently" if math.isinf(worst) else
                f"gave top-1 logprobs differing by up to {worst:.4g} (> score_tolerance {tolerance:g})")
        raise TeacherNotDeterministic(
            f"teacher {backend.identity} is not deterministic: scoring the same {len(items)} text(s) together, "
            f"in reverse order and one at a time, it {what} (text {where}, {n_tokens} tokens). Its logprobs would "
            f"be noise at that scale; fix the server (greedy, batch-invariant kernels, one replica) or raise "
            f"score_tolerance")
    return result
