"""Charts for the report, drawn with matplotlib's Agg canvas (no pyplot, no display).

matplotlib is optional: without it every function returns ``None`` and the report omits the chart.
"""

from __future__ import annotations

import io
from typing import Any

from .format import MODEL_LABELS, MODELS

_COLORS = {"teacher": "#6c757d", "student_before": "#f0ad4e", "student_after": "#2b8a3e"}


def accuracy_png(report: dict[str, Any]) -> bytes | None:
    """Bar chart of each evaluated model's accuracy with 95% CI error bars, as PNG bytes."""
    models = [m for m in MODELS if report.get(m)]
    if not models:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None

    acc = [100 * float(report[m]["accuracy"]) for m in models]
    cis = [report[m].get("ci95") or [report[m]["accuracy"]] * 2 for m in models]
    lower = [max(0.0, a - 100 * float(ci[0])) for a, ci in zip(acc, cis)]
    upper = [max(0.0, 100 * float(ci[1]) - a) for a, ci in zip(acc, cis)]

    fig = Figure(figsize=(5.0, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(len(models)))
    ax.bar(x, acc, yerr=[lower, upper], capsize=6, color=[_COLORS[m] for m in models], edgecolor="#333333")
    for xi, a in zip(x, acc):
        ax.annotate(f"{a:.1f}%", (xi, a), xytext=(8, 3), textcoords="offset points", fontsize=9)
    ax.set_xticks(x, [MODEL_LABELS[m] for m in models])
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"held-out accuracy, n={report.get('n_eval', 0)} (95% Wilson CI)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
