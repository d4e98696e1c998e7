"""Charts for the report, drawn with matplotlib's Agg canvas (no pyplot, no display), as PNG bytes.

matplotlib is optional: without it every function returns ``None`` and the report shows a note
in place of the chart. Each function also returns ``None`` when it has no data to draw.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from .format import MODEL_LABELS, MODELS

_COLORS = {"teacher": "#6c757d", "student_before": "#f0ad4e", "student_after": "#2b8a3e"}
_BEFORE, _AFTER = "#adb5bd", "#1c7ed6"


def available() -> bool:
    """Whether matplotlib can be imported (else every plot is ``None``)."""
    return _figure(1, 1) is not None


def _figure(width: float = 5.6, height: float = 3.3) -> Any:
    """A figure on an Agg canvas, or ``None`` when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _axes(fig: Any, title: str, xlabel: str, ylabel: str) -> Any:
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _ci_errors(report: dict[str, Any], models: list[str]) -> tuple[list[float], list[list[float]]]:
    """Accuracy in % and asymmetric error bars from each model's 95% CI."""
    acc = [100 * float(report[m]["accuracy"]) for m in models]
    cis = [report[m].get("ci95") or [report[m]["accuracy"]] * 2 for m in models]
    lower = [max(0.0, a - 100 * float(ci[0])) for a, ci in zip(acc, cis)]
    upper = [max(0.0, 100 * float(ci[1]) - a) for a, ci in zip(acc, cis)]
    return acc, [lower, upper]


def accuracy_png(report: dict[str, Any]) -> bytes | None:
    """Bar chart of each evaluated model's accuracy with 95% CI error bars."""
    models = [m for m in MODELS if report.get(m)]
    if not models or (fig := _figure(5.0, 3.2)) is None:
        return None
    acc, err = _ci_errors(report, models)
    ax = _axes(fig, f"n={report.get('n_eval', 0)} held-out problems, 95% Wilson CI", "", "accuracy (%)")
    x = list(range(len(models)))
    ax.bar(x, acc, yerr=err, capsize=6, color=[_COLORS[m] for m in models], edgecolor="#333333")
    for xi, a in zip(x, acc):
        ax.annotate(f"{a:.1f}%", (xi, a), xytext=(8, 3), textcoords="offset points", fontsize=9)
    ax.set_xticks(x, [MODEL_LABELS[m] for m in models])
    ax.set_ylim(0, 105)
    return _png(fig)


def accuracy_vs_tokens_png(report: dict[str, Any]) -> bytes | None:
    """Accuracy (with its 95% CI) against mean completion tokens per answer, one point per model."""
    models = [m for m in MODELS if report.get(m) and report[m].get("mean_tokens") is not None]
    if not models or (fig := _figure()) is None:
        return None
    acc, err = _ci_errors(report, models)
    tokens = [float(report[m]["mean_tokens"]) for m in models]
    ax = _axes(fig, "greedy answers, 95% Wilson CI", "mean completion tokens per answer", "accuracy (%)")
    for i, m in enumerate(models):
        ax.errorbar([tokens[i]], [acc[i]], yerr=[[err[0][i]], [err[1][i]]], fmt="o", capsize=5, markersize=8,
                    color=_COLORS[m], label=MODEL_LABELS[m])
    ax.set_ylim(0, 105)
    lo, hi = min(tokens), max(tokens)
    pad = max(1.0, 0.15 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), hi + pad)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def length_hist_png(unit: str, before: Sequence[float], after: Sequence[float]) -> bytes | None:
    """Overlaid histograms of trace lengths: every generated trace vs the curated training set."""
    if not before and not after:
        return None
    if (fig := _figure()) is None:
        return None
    ax = _axes(fig, "every generated trace vs the curated training set", f"completion length ({unit})", "traces")
    values = list(before) + list(after)
    lo, hi = min(values), max(values)
    bins: Any = 30 if hi > lo else 1
    if before:
        ax.hist(before, bins=bins, range=(lo, hi if hi > lo else lo + 1), color=_BEFORE, alpha=0.8,
                label=f"generated: {len(before)} traces")
    if after:
        ax.hist(after, bins=bins, range=(lo, hi if hi > lo else lo + 1), color=_AFTER, alpha=0.7,
                label=f"curated (train.jsonl): {len(after)}")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def difficulty_png(pass_rates: Sequence[float], n_unknown: int = 0) -> bytes | None:
    """Histogram of the teacher's per-problem pass rate over its unhinted samples (0 = hardest)."""
    if not pass_rates:
        return None
    if (fig := _figure()) is None:
        return None
    note = f" ({n_unknown} more without unhinted samples)" if n_unknown else ""
    ax = _axes(fig, f"{len(pass_rates)} problems{note}; 0 = hardest",
               "teacher pass rate over unhinted samples", "problems")
    ax.hist(pass_rates, bins=[i / 10 for i in range(11)], color="#7950f2", edgecolor="white")
    ax.set_xlim(0, 1)
    return _png(fig)


def loss_png(rows: Sequence[dict[str, Any]]) -> bytes | None:
    """Training curves from ``loss.jsonl``: every logged numeric key with ``loss`` (or ``reward``)
    in its name against the step (or the row number when no step was logged)."""
    keys: list[str] = []
    for row in rows:
        for k, v in row.items():
            if (("loss" in k or "reward" in k) and k not in keys and isinstance(v, (int, float))
                    and not isinstance(v, bool)):
                keys.append(k)
    if not keys or (fig := _figure()) is None:
        return None
    ax = _axes(fig, "train/loss.jsonl", "step", "loss" if keys == ["loss"] else "value")
    for k in keys:
        pts = [(row.get("step", i + 1), row[k]) for i, row in enumerate(rows)
               if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, markersize=3,
                label=k)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def rounds_png(loop: dict[str, Any]) -> bytes | None:
    """``reasondistill loop``: held-out accuracy (95% Wilson CI) per round; round 0 is the untrained
    student when it was evaluated."""
    rows = ([{"round": 0, **loop["baseline"]}] if loop.get("baseline") else []) + [
        r for r in loop.get("rounds", []) if r.get("accuracy") is not None]
    if not rows or (fig := _figure()) is None:
        return None
    x = [r["round"] for r in rows]
    acc = [100 * float(r["accuracy"]) for r in rows]
    cis = [r.get("ci95") or [r["accuracy"]] * 2 for r in rows]
    err = [[max(0.0, a - 100 * float(c[0])) for a, c in zip(acc, cis)],
           [max(0.0, 100 * float(c[1]) - a) for a, c in zip(acc, cis)]]
    ax = _axes(fig, "held-out accuracy per round, 95% Wilson CI", "round", "accuracy (%)")
    ax.errorbar(x, acc, yerr=err, fmt="-o", capsize=5, color=_COLORS["student_after"])
    ax.set_xticks(x)
    ax.set_ylim(0, 105)
    return _png(fig)


def accuracy_vs_compute(rows: Sequence[dict[str, Any]], baseline: dict[str, Any] | None = None) -> bytes | None:
    """A comparison's entries: accuracy (seed mean, with its interval) against the training CPU
    seconds each student cost (per seed), labelled by entry; the untrained student as a line."""
    points = [(r["objective"], (r.get("cost") or {}).get("train_cpu_seconds"), r) for r in rows]
    points = [(name, cpu, r) for name, cpu, r in points if cpu]
    fig = _figure(6.4, 3.8) if points else None
    if fig is None:
        return None
    ax = _axes(fig, "Accuracy against training compute", "training CPU seconds per student (log)",
               "held-out accuracy (%)")
    for name, cpu, r in points:
        acc = 100 * float(r["accuracy"])
        lo, hi = (100 * float(x) for x in r.get("ci95") or [r["accuracy"]] * 2)
        ax.errorbar([cpu], [acc], yerr=[[max(0.0, acc - lo)], [max(0.0, hi - acc)]], fmt="o", capsize=3,
                    color=_AFTER)
        ax.annotate(name, (cpu, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if baseline:
        ax.axhline(100 * float(baseline["accuracy"]), color=_BEFORE, linestyle="--", linewidth=1,
                   label="untrained student")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xscale("log")
    return _png(fig)
