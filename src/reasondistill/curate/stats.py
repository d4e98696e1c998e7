"""Summaries the curate manifest records: the pass-rate histogram and length statistics."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..records import Trace
from .base import trace_length


def pass_rate_histogram(rates: Iterable[float | None]) -> dict[str, int]:
    """Problems per pass rate (two decimals; ``"none"`` for problems without unhinted samples),
    in increasing order."""
    counts = Counter("none" if r is None else f"{r:.2f}" for r in rates)
    return {k: counts[k] for k in sorted(counts, key=lambda k: (k == "none", k))}


def summary(values: list[int]) -> dict[str, Any]:
    """``n``, ``mean``, ``median`` and ``p90`` (nearest rank) of ``values``; None where empty."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 2), "median": statistics.median(ordered),
            "p90": ordered[math.ceil(0.9 * len(ordered)) - 1]}


def length_stats(groups: dict[str, list[Trace]]) -> dict[str, dict[str, Any]]:
    """``{unit: {group: summary}}`` for ``chars`` and ``tokens`` (see ``base.trace_length``)."""
    return {unit: {name: summary([trace_length(t, unit) for t in traces]) for name, traces in groups.items()}
            for unit in ("chars", "tokens")}
