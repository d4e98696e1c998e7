"""Intervals for results trained with several seeds: training noise and held-out sampling together.

A comparison row is a mean over training seeds of an accuracy on held-out problems. Its
uncertainty has two sources: which data order (seed) training happened to get, and which
problems the held-out set happened to draw. An interval over problems alone (a paired bootstrap)
calls two runs of the *same* recipe with different seeds significantly different; an interval over
seeds alone ignores that 300 problems are a sample.

What we compute, for arms A (N_A seeds) and B (N_B seeds) scored on the same n problems:

- the training component from the per-seed accuracies, Welch-style: ``var(A)/N_A + var(B)/N_B``
  (sample variances; by default arms are not paired by seed index, because the same seed on other
  data is another data order; see "Seeds paired" below);
- the problem component from the per-problem differences of the seed-averaged scores (problems
  paired across arms): ``var(d)/n``;
- their sum as the variance of the difference of means, with Welch-Satterthwaite degrees of
  freedom, and a Student t interval.

**Seeds paired** (``paired=True``): when seed k of both arms read the same examples in the same
order, or continued the same parent checkpoint, their results move together, and the training
component is the variance of the per-seed differences over their N pairs, ``var(a_k - b_k)/N``
with N - 1 degrees of freedom. The pairing must come from the design, never from the results: it
is valid whatever the correlation, but with uncorrelated seeds it only costs degrees of freedom.
Measured (README, training noise): the same five data orders with and without weight averaging
scored 0.96-correlated per seed, which cut the training part of the difference's standard error
from 1.39 points (Welch) to 0.39.

Why not a two-level bootstrap (resample seeds, then problems): with the 3-5 seeds a comparison
can afford, resampling seeds sees only those few values, so it understates their spread (its
variance is (N-1)/N of the sample's) and its percentiles carry no small-sample widening, while
the t quantile at 2 degrees of freedom is 4.3, not 1.96. The problem component also holds some
seed-to-seed flipping of single problems, so the sum errs on the wide side, never the narrow one.
With one seed the training noise is not measured: the interval is then the problems' alone, and
says so (``seeds_measured: false``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LEVEL = 0.95
METHOD = "t interval: training variance over seeds (Welch) + problem variance (paired), Welch-Satterthwaite df"
METHOD_PAIRED = ("t interval: training variance of the per-seed differences (seeds paired: same data and order, "
                 "or the same parent) + problem variance (paired), Welch-Satterthwaite df")


@dataclass(frozen=True, slots=True)
class SeedInterval:
    """A mean over seeds (or a difference of two such means) with its interval and its parts."""

    value: float
    lo: float
    hi: float
    df: float
    se_seeds: float  # the training-noise part of the standard error
    se_problems: float  # the held-out sampling part
    n_seeds: tuple[int, ...]
    n_problems: int
    per_seed: tuple[tuple[float, ...], ...] = field(default=())  # each arm's per-seed accuracies
    seeds_paired: bool = False  # seed k of one arm against seed k of the other (see the module)

    @property
    def seeds_measured(self) -> bool:
        return all(n > 1 for n in self.n_seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": [self.lo, self.hi], "df": self.df, "se_seeds": self.se_seeds,
                "se_problems": self.se_problems, "n_seeds": list(self.n_seeds), "n_problems": self.n_problems,
                "per_seed": [list(p) for p in self.per_seed], "seeds_measured": self.seeds_measured,
                "seeds_paired": self.seeds_paired, "method": METHOD_PAIRED if self.seeds_paired else METHOD}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    """Sample variance (ddof 1); 0 for a single value."""
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _check(arm: Sequence[Sequence[float]], n: int | None, name: str) -> int:
    if not arm or not arm[0]:
        raise ValueError(f"{name}: no seeds or no problems")
    widths = {len(s) for s in arm}
    if len(widths) != 1 or (n is not None and widths != {n}):
        raise ValueError(f"{name}: every seed must be scored on the same problems "
                         f"(got {sorted(widths)} problems{'' if n is None else f', expected {n}'})")
    return widths.pop()


def on_shared(runs: Sequence[Mapping[str, float]]) -> tuple[list[str], list[list[float]]]:
    """The problems every run answered (sorted) and each run's scores on them, in that order: runs
    that skipped or lost problems are compared on the same problems, never on different sets."""
    shared = sorted(set.intersection(*(set(r) for r in runs))) if runs else []
    return shared, [[r[p] for p in shared] for r in runs]


def interval(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]] | None = None,
             level: float = LEVEL, *, paired: bool = False) -> SeedInterval:
    """Mean over seeds of ``a`` (``a[s][i]``: seed ``s``, problem ``i``), or the difference of the
    means ``a - b`` when ``b`` is given (problems matched by index); ``paired``: seed ``s`` of ``a``
    against seed ``s`` of ``b`` (the same number of seeds, at least 2). See the module docstring."""
    n = _check(a, None, "a")
    arms = [a] if b is None else [a, b]
    if b is not None:
        _check(b, n, "b")
    if paired and (b is None or len(a) != len(b) or len(a) < 2):
        raise ValueError("paired seeds need two arms with the same number of seeds, at least 2 "
                         f"(got {[len(arm) for arm in arms]})")
    per_seed = [tuple(_mean(s) for s in arm) for arm in arms]
    sign = [1.0, -1.0]
    value = sum(sg * _mean(ps) for sg, ps in zip(sign, per_seed))
    per_problem = [sum(sg * _mean([s[i] for s in arm]) for sg, arm in zip(sign, arms)) for i in range(n)]
    if paired:
        diffs = [x - y for x, y in zip(*per_seed)]
        parts = [(_var(diffs) / len(diffs), len(diffs) - 1)]
    else:
        parts = [(_var(ps) / len(ps), len(ps) - 1) for ps in per_seed]  # (variance of the mean, its df)
    parts.append((_var(per_problem) / n, n - 1))
    total = sum(v for v, _ in parts)
    denom = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    df = total * total / denom if denom > 0 else math.inf
    half = t_quantile(0.5 + level / 2, df) * math.sqrt(total)
    return SeedInterval(value=value, lo=value - half, hi=value + half, df=df,
                        se_seeds=math.sqrt(sum(v for v, _ in parts[:-1])), se_problems=math.sqrt(parts[-1][0]),
                        n_seeds=tuple(len(arm) for arm in arms), n_problems=n, per_seed=tuple(per_seed),
                        seeds_paired=paired)


@dataclass(frozen=True, slots=True)
class SeedNoise:
    """How far one entry's accuracy moves from seed to seed, in two parts: the per-problem flips that
    a larger held-out set averages out, and the training noise that no held-out set removes. Tells a
    user whether more held-out problems or a steadier recipe would narrow a comparison.

    Taking problem i's pass rate over the seeds as its chance p_i, the flips alone give a seed's
    accuracy the variance ``sum p_i (1 - p_i) / n^2`` (times ``S / (S - 1)``, unbiased); the observed
    variance over the seeds beyond that is the training part (0 when the flips explain it all)."""

    sd: float  # of one seed's accuracy, observed over the seeds
    sd_flips: float  # the flips' part, on these n_problems
    sd_training: float
    n_seeds: int
    n_problems: int
    n_disagree: int  # problems some seeds pass and others fail

    def expected_spread(self, seeds: int = 5, n_problems: int | None = None) -> float:
        """Expected max - min of ``seeds`` seeds' accuracies on ``n_problems`` held-out problems (default:
        these), both parts taken as normal: the flips' variance scales as 1 / n_problems."""
        n = n_problems or self.n_problems
        var = self.sd_training ** 2 + self.sd_flips ** 2 * self.n_problems / n
        return spread_factor(seeds) * math.sqrt(var)

    def to_dict(self) -> dict[str, Any]:
        sizes = sorted({self.n_problems, 1000})
        return {"sd": self.sd, "sd_flips": self.sd_flips, "sd_training": self.sd_training, "n_seeds": self.n_seeds,
                "n_problems": self.n_problems, "n_disagree": self.n_disagree,
                "expected_spread_5_seeds": {str(n): self.expected_spread(5, n) for n in sizes}}


def seed_noise(per_seed: Sequence[Sequence[float]]) -> SeedNoise:
    """:class:`SeedNoise` of one entry's scores ``per_seed[s][i]`` (seed ``s``, problem ``i``; 2+ seeds,
    the same problems)."""
    n = _check(per_seed, None, "per_seed")
    s = len(per_seed)
    if s < 2:
        raise ValueError(f"seed noise needs at least 2 seeds (got {s})")
    acc = [_mean(row) for row in per_seed]
    rate = [_mean([row[i] for row in per_seed]) for i in range(n)]
    flips = sum(p * (1 - p) for p in rate) / n ** 2 * s / (s - 1)
    observed = _var(acc)
    return SeedNoise(sd=math.sqrt(observed), sd_flips=math.sqrt(flips),
                     sd_training=math.sqrt(max(0.0, observed - flips)), n_seeds=s, n_problems=n,
                     n_disagree=sum(0 < p < 1 for p in rate))


def format_noise(noise: dict[str, Any]) -> str:
    """``SD = flips + training (expected spread of 5 seeds here / on 1000)``, in points, from
    :meth:`SeedNoise.to_dict`."""
    spread = noise["expected_spread_5_seeds"]
    here = f"{100 * spread[str(noise['n_problems'])]:.1f}"
    return (f"{100 * noise['sd']:.2f} = {100 * noise['sd_flips']:.2f} + {100 * noise['sd_training']:.2f} "
            f"({here}" + ("" if noise["n_problems"] == 1000 else f" / {100 * spread['1000']:.1f}") + ")")


def spread_factor(k: int, steps: int = 4000) -> float:
    """E[max - min] of ``k`` independent standard normals: the integral of ``1 - F^k - (1 - F)^k``
    (Simpson's rule on [-10, 10]); 2/sqrt(pi) for 2, 2.326 for 5."""
    if k < 2:
        return 0.0
    h = 20.0 / steps

    def g(x: float) -> float:
        f = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
        return 1.0 - f ** k - (1.0 - f) ** k

    inner = sum((4 if j % 2 else 2) * g(-10.0 + j * h) for j in range(1, steps))
    return h / 3 * (g(-10.0) + inner + g(10.0))


def verdict(diff: SeedInterval) -> str:
    """``better`` / ``worse`` when the interval of ``a - b`` excludes 0, else ``no detectable difference``."""
    if diff.lo > 0:
        return "better"
    if diff.hi < 0:
        return "worse"
    return "no detectable difference"


# ---------------------------------------------------------------------------
# Student t quantiles, without scipy (not a dependency): the CDF through the regularized incomplete
# beta function (a continued fraction), inverted by bisection.


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    if math.isinf(df):
        return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``inf``: the normal)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0
