"""The report's per-teacher table: for each teacher named in the traces, how many traces it wrote,
how often its unhinted ones passed verification (with a Wilson 95% interval), how long they were
and how many of them curation kept.

Read from the run folder's ``generate/traces.jsonl``, ``verify/verdicts.jsonl`` and
``curate/train.jsonl`` (whichever exist), so a report rebuilt from any run folder has it. Hinted
(STaR) traces saw the answer and ungraded ones (no gold answer) have no verdict to count, so the
pass rate is over the other traces, as curation's pass rates are.
"""

from __future__ import annotations

from typing import Any

from ..layout import Layout
from ..metrics import wilson_ci
from ..grading.base import NO_GOLD
from .data import _rows

HEADER = ["teacher", "traces", "hinted", "pass rate", "95% CI", "tokens/trace", "kept"]


def teacher_stats(layout: Layout) -> list[dict[str, Any]]:
    """One dict per teacher, in the order their first trace appears (``[]`` without traces):
    ``name, traces, hinted, graded, passed, pass_rate, ci95, mean_tokens, kept``; ``pass_rate`` and
    ``ci95`` are None without graded traces, ``kept`` is None before curation ran."""
    traces, _ = _rows(layout.traces, "teacher traces")
    if not traces:
        return []
    verdicts, _ = _rows(layout.verdicts, "verdicts")
    by_trace = {v.get("trace_id"): v for v in verdicts or []}
    curated, _ = _rows(layout.curated, "curated training set")
    teacher_of = {t.get("id"): str(t.get("teacher", "")) for t in traces}
    stats: dict[str, dict[str, Any]] = {}
    tokens: dict[str, list[int]] = {}
    for t in traces:
        name = str(t.get("teacher", ""))
        row = stats.setdefault(name, {"name": name, "traces": 0, "hinted": 0, "graded": 0, "passed": 0})
        row["traces"] += 1
        row["hinted"] += bool(t.get("hinted"))
        n = (t.get("usage") or {}).get("completion_tokens") if isinstance(t.get("usage"), dict) else None
        if isinstance(n, int):
            tokens.setdefault(name, []).append(n)
        v = by_trace.get(t.get("id"))
        if v is not None and not t.get("hinted") and v.get("reason") != NO_GOLD:
            row["graded"] += 1
            row["passed"] += bool(v.get("passed"))
    kept: dict[str, int] = {}
    for ex in curated or []:
        meta = ex.get("meta") if isinstance(ex.get("meta"), dict) else {}
        name = meta.get("teacher") or teacher_of.get(meta.get("trace_id"))
        if name is not None:
            kept[str(name)] = kept.get(str(name), 0) + 1
    for name, row in stats.items():
        k, n = row["passed"], row["graded"]
        row["pass_rate"] = k / n if n else None
        row["ci95"] = list(wilson_ci(k, n)) if n else None
        lengths = tokens.get(name)
        row["mean_tokens"] = sum(lengths) / len(lengths) if lengths else None
        row["kept"] = kept.get(name, 0) if curated is not None else None
    return list(stats.values())


def teacher_rows(report: dict[str, Any]) -> list[list[str]]:
    """``report["teachers"]`` formatted for display (see ``HEADER``)."""
    from .format import pct

    rows = []
    for t in report.get("teachers") or []:
        ci = t.get("ci95") or [None, None]
        tokens = t.get("mean_tokens")
        rows.append([str(t.get("name", "")), str(t.get("traces", 0)), str(t.get("hinted", 0)),
                     f"{pct(t.get('pass_rate'))} ({t.get('passed', 0)}/{t.get('graded', 0)})",
                     f"[{pct(ci[0])}, {pct(ci[1])}]", "n/a" if tokens is None else f"{tokens:.1f}",
                     "n/a" if t.get("kept") is None else str(t["kept"])])
    return rows
