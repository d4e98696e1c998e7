"""Evaluation metrics: estimators on counts, and aggregation of :class:`EvalSample` lists.

Per-sample scoring happens in the runner (one :class:`EvalSample` per generation); this module
only aggregates. By convention ``sample_idx == 0`` is the greedy generation and ``1..k`` are the
temperature samples used for pass@k and maj@k.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from . import bootstrap
from .records import EvalMetric, EvalSample


def wilson_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (``z=1.96``: 95%).

    With ``n == 0`` there is no information and the interval is the whole range ``(0.0, 1.0)``.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson_ci needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed: ``1 - C(n-c, k) / C(n, k)``.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (Chen et al. 2021), which never forms the
    large binomials.
    """
    if n < 1 or k < 1:
        raise ValueError(f"pass_at_k needs n >= 1 and k >= 1, got n={n}, k={k}")
    if k > n:
        raise ValueError(f"pass_at_k needs k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got c={c}, n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod




def normalize_answer(answer: str) -> str:
    """Canonical form for voting; the one normalisation lives in :mod:`reasondistill.verify.answers`."""
    from .grading.answers import normalize
    return normalize(answer)


def majority_answer(answers: Sequence[str | None], k: int) -> int | None:
    """Index (into ``answers``) of the first sample giving the majority answer among the first
    ``k``; ties go to the answer seen earliest. ``None`` answers do not vote; all ``None``: ``None``."""
    first_at: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for i, a in enumerate(answers[:k]):
        if a is None:
            continue
        key = normalize_answer(a)
        first_at.setdefault(key, i)
        counts[key] += 1
    if not counts:
        return None
    best = max(counts.values())
    key = min((key for key, c in counts.items() if c == best), key=first_at.__getitem__)
    return first_at[key]


def maj_at_k(answers: Sequence[str | None], gold_correct: Sequence[bool], k: int) -> bool:
    """Majority vote over the first ``k`` extracted answers (normalised; ``None`` ignored; ties
    go to the earliest). Correct if the sample that gave the majority answer was correct.
    No answer at all counts as wrong."""
    if len(answers) != len(gold_correct):
        raise ValueError(f"maj_at_k: {len(answers)} answers but {len(gold_correct)} correctness flags")
    if not 1 <= k <= len(answers):
        raise ValueError(f"maj_at_k needs 1 <= k <= {len(answers)} (the number of answers), got k={k}")
    idx = majority_answer(answers, k)
    return idx is not None and bool(gold_correct[idx])


def k_values(n: int) -> list[int]:
    """The k reported for ``n`` samples: powers of two up to ``n``, plus ``n`` itself."""
    ks = []
    k = 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and ks[-1] != n:
        ks.append(n)
    return ks


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def summarize(samples: Sequence[EvalSample], model: str) -> dict[str, Any]:
    """Aggregate one model's samples into a JSON-safe dict.

    Greedy metrics (``accuracy``, ``ci95``, ``format_rate``, ``mean_tokens``,
    ``truncated_rate``, ``fallback_credits``: passed without the answer format, through the
    last-number fallback) use the ``sample_idx == 0`` sample of each problem. When sampled
    generations (``sample_idx >= 1``) exist, also ``pass_at_k`` and ``maj_at_k`` (keys are
    ``str(k)``, k = 1, 2, 4, ... up to the smallest per-problem sample count, plus that count),
    ``sampled_accuracy`` (share of all sampled generations that passed) and ``n_samples``.

    ``n`` is the number of problems with a greedy sample. An empty list gives ``n == 0``; a
    non-empty list without any greedy sample raises :class:`ValueError`.
    """
    greedy: dict[str, EvalSample] = {}
    sampled: dict[str, list[EvalSample]] = defaultdict(list)
    for s in samples:
        if s.sample_idx == 0:
            greedy.setdefault(s.problem_id, s)  # a duplicate greedy row is ignored
        else:
            sampled[s.problem_id].append(s)
    if samples and not greedy:
        raise ValueError(f"summarize({model!r}): no greedy samples (sample_idx == 0) among {len(samples)}")

    g = list(greedy.values())
    n = len(g)
    k_pass = sum(1 for s in g if s.passed)
    lo, hi = wilson_ci(k_pass, n)
    out: dict[str, Any] = {
        "model": model,
        "n": n,
        "accuracy": k_pass / n if n else 0.0,
        "ci95": [lo, hi],
        "mean_score": _mean([float(s.score) for s in g]),
        "format_rate": _mean([1.0 if s.formatted else 0.0 for s in g]),
        "mean_tokens": _mean([float(s.completion_tokens) for s in g]),
        "truncated_rate": _mean([1.0 if s.finish_reason == "length" else 0.0 for s in g]),
        "answer_rate": _mean([1.0 if s.extracted is not None else 0.0 for s in g]),
        # credited without an ``Answer:`` line, by the last-number fallback: a lenient score shows here
        "fallback_credits": sum(1 for s in g if s.passed and not s.formatted),
    }
    for key, flags in (("format", [s.formatted for s in g]), ("truncated", [s.finish_reason == "length" for s in g]),
                       ("answer", [s.extracted is not None for s in g])):
        out[f"{key}_ci95"] = list(wilson_ci(sum(flags), n))
    out["tokens"] = token_stats([s.completion_tokens for s in g])
    if not sampled:
        return out

    per_problem = [sorted(v, key=lambda s: s.sample_idx) for v in sampled.values()]
    n_samples = min(len(v) for v in per_problem)
    out["n_samples"] = n_samples
    out["n_sampled_problems"] = len(per_problem)
    ks = k_values(n_samples)
    # per-problem values once: their means are pass@k / maj@k, their bootstrap gives the intervals
    per_k = {k: ([pass_at_k(len(v), sum(s.passed for s in v), k) for v in per_problem],
                 [1.0 if maj_at_k([s.extracted for s in v], [s.passed for s in v], k) else 0.0 for v in per_problem])
             for k in ks}
    out["pass_at_k"] = {str(k): _mean(p) for k, (p, _) in per_k.items()}
    out["maj_at_k"] = {str(k): _mean(m) for k, (_, m) in per_k.items()}
    flat = [s for v in per_problem for s in v]
    out["sampled_accuracy"] = _mean([1.0 if s.passed else 0.0 for s in flat])
    out["pass_at_k_ci95"] = {str(k): bootstrap.mean_ci(p).to_dict()["ci95"] for k, (p, _) in per_k.items()}
    out["maj_at_k_ci95"] = {str(k): bootstrap.mean_ci(m).to_dict()["ci95"] for k, (_, m) in per_k.items()}
    out["pass1_sampled"] = sampled_pass1(per_problem)
    return out


def token_stats(tokens: Sequence[int]) -> dict[str, Any]:
    """Tokens per answer: mean with its bootstrap interval, quantiles, min and max."""
    values = [float(t) for t in tokens]
    mean = bootstrap.mean_ci(values)
    return {"mean": mean.value, "ci95": mean.to_dict()["ci95"], "quantiles": bootstrap.quantiles(values),
            "min": min(values) if values else None, "max": max(values) if values else None}


def sampled_pass1(per_problem: Sequence[Sequence[EvalSample]]) -> dict[str, Any]:
    """pass@1 over sampled runs (seeds): the mean over problems of each problem's pass rate across
    its runs, which equals the mean over runs of each run's accuracy when every problem has every
    run, with a bootstrap interval over problems; ``per_run`` is each run's accuracy (keyed by
    ``sample_idx``) so the seed-to-seed spread is visible too."""
    rates = [sum(s.passed for s in v) / len(v) for v in per_problem]
    runs: dict[int, list[float]] = defaultdict(list)
    for v in per_problem:
        for s in v:
            runs[s.sample_idx].append(1.0 if s.passed else 0.0)
    return {**bootstrap.mean_ci(rates).to_dict(), "runs": len(runs),
            "per_run": {str(i): _mean(r) for i, r in sorted(runs.items())}}


def greedy_passes(samples: Sequence[EvalSample]) -> dict[str, float]:
    """``{problem_id: 1.0 | 0.0}`` for each problem's greedy (``sample_idx == 0``) answer."""
    out: dict[str, float] = {}
    for s in samples:
        if s.sample_idx == 0:
            out.setdefault(s.problem_id, 1.0 if s.passed else 0.0)
    return out


def paired_bootstrap(after: Sequence[EvalSample], before: Sequence[EvalSample]) -> dict[str, Any]:
    """Greedy accuracy of ``after`` minus ``before`` on the problems both answered, with a paired
    percentile-bootstrap interval (problems resampled, each keeping both its answers)."""
    pa, pb = greedy_passes(after), greedy_passes(before)
    shared = sorted(pa.keys() & pb.keys())
    iv = bootstrap.difference_ci([pa[k] for k in shared], [pb[k] for k in shared])
    return {**iv.to_dict(), "wins": sum(pa[k] > pb[k] for k in shared),
            "losses": sum(pa[k] < pb[k] for k in shared)}


def gap_recovered_interval(teacher: Sequence[EvalSample], before: Sequence[EvalSample],
                           after: Sequence[EvalSample]) -> dict[str, Any]:
    """The share of the teacher-student gap recovered on the problems all three answered, with a
    bootstrap interval that resamples problems jointly across teacher, before and after."""
    pt, pb, pa = greedy_passes(teacher), greedy_passes(before), greedy_passes(after)
    shared = sorted(pt.keys() & pb.keys() & pa.keys())
    return bootstrap.gap_recovered_ci([pt[k] for k in shared], [pb[k] for k in shared],
                                      [pa[k] for k in shared]).to_dict()


def summaries_to_records(summary: dict[str, Any]) -> list[EvalMetric]:
    """Flatten a :func:`summarize` dict into :class:`EvalMetric` rows (``pass@k``, ``maj@k``...)."""
    model, n = summary["model"], int(summary["n"])
    ci = summary.get("ci95")
    rows = [EvalMetric(model, "accuracy", float(summary["accuracy"]), n, tuple(ci) if ci else None)]
    for metric in ("mean_score", "format_rate", "mean_tokens", "truncated_rate", "answer_rate", "sampled_accuracy"):
        if metric in summary:
            rows.append(EvalMetric(model, metric, float(summary[metric]), n))
    if (p1 := summary.get("pass1_sampled")) and p1.get("value") is not None:
        ci = tuple(p1["ci95"]) if p1.get("ci95") else None
        rows.append(EvalMetric(model, "pass@1_sampled", float(p1["value"]), n, ci))
    for name, key in (("pass", "pass_at_k"), ("maj", "maj_at_k")):
        for k, value in summary.get(key, {}).items():
            rows.append(EvalMetric(model, f"{name}@{k}", float(value), n))
    return rows


def gap_recovered(teacher: float | None, before: float | None, after: float | None) -> float | None:
    """Share of the teacher-student gap closed by training: ``(after - before) / (teacher - before)``.

    ``None`` when the teacher is not better than the student before training (or a value is missing).
    """
    if teacher is None or before is None or after is None or teacher <= before:
        return None
    return (after - before) / (teacher - before)


def paired_difference(a: Sequence[EvalSample], b: Sequence[EvalSample], z: float = 1.96) -> dict[str, Any]:
    """Greedy accuracy of ``a`` minus ``b`` on the problems both answered, with a paired 95% CI.

    Two students evaluated on the same problems are far better compared problem by problem
    than by their separate Wilson intervals: most problems are solved by both or by neither,
    and only the discordant ones carry information. The interval is the normal one on the
    per-problem differences (n >= 30 in practice; 300 held-out problems by default)."""
    pa = {s.problem_id: float(s.passed) for s in a if s.sample_idx == 0}
    pb = {s.problem_id: float(s.passed) for s in b if s.sample_idx == 0}
    shared = sorted(pa.keys() & pb.keys())
    n = len(shared)
    if n == 0:
        return {"delta": None, "ci95": None, "n": 0, "wins": 0, "losses": 0}
    d = [pa[k] - pb[k] for k in shared]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    return {"delta": mean, "ci95": [mean - half, mean + half], "n": n,
            "wins": sum(x > 0 for x in d), "losses": sum(x < 0 for x in d)}
