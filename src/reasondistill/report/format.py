"""Formatting shared by the Markdown and HTML renderings (and the plots) of ``report.json``."""

from __future__ import annotations

from typing import Any

MODELS = ("teacher", "student_before", "student_after")
MODEL_LABELS = {"teacher": "teacher", "student_before": "student (before)", "student_after": "student (after)"}

def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def signed_pts(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def fmt_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


TABLE_HEADER = ["model", "accuracy", "95% CI", "format rate", "tokens/answer", "n"]


def model_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per evaluated model, cells formatted for display (see ``TABLE_HEADER``)."""
    rows = []
    for model in MODELS:
        s = report.get(model)
        if not s:
            continue
        ci = s.get("ci95") or [None, None]
        tokens = s.get("mean_tokens")
        rows.append([
            MODEL_LABELS[model],
            pct(s.get("accuracy")),
            f"[{pct(ci[0])}, {pct(ci[1])}]",
            pct(s.get("format_rate")),
            "n/a" if tokens is None else f"{tokens:.1f}",
            str(s.get("n", "")),
        ])
    return rows


def sampled_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """pass@k / maj@k table (header, rows) over the models that have sampled generations."""
    ks: list[str] = []
    for model in MODELS:
        for k in (report.get(model) or {}).get("pass_at_k", {}):
            if k not in ks:
                ks.append(k)
    ks.sort(key=int)
    header = ["model"] + [f"pass@{k}" for k in ks] + [f"maj@{k}" for k in ks]
    rows = []
    for model in MODELS:
        s = report.get(model) or {}
        if "pass_at_k" not in s:
            continue
        cells = [pct(s["pass_at_k"].get(k)) if k in s["pass_at_k"] else "" for k in ks]
        cells += [pct(s.get("maj_at_k", {}).get(k)) if k in s.get("maj_at_k", {}) else "" for k in ks]
        rows.append([MODEL_LABELS[model]] + cells)
    return header, rows


def headline(report: dict[str, Any]) -> list[str]:
    """Short sentences on improvement, gap recovered and CI overlap."""
    lines = []
    if report.get("improvement") is not None:
        lines.append(f"Improvement (student after - before): {signed_pts(report['improvement'])}")
    if report.get("gap_recovered") is not None:
        lines.append(f"Teacher-student gap recovered: {pct(report['gap_recovered'])}")
    elif report.get("teacher") and report.get("student_before"):
        lines.append("Teacher-student gap recovered: n/a (teacher not better than the student before training)")
    if report.get("ci_overlap") is not None:
        lines.append("Before/after 95% CIs overlap: the change may be noise" if report["ci_overlap"]
                     else "Before/after 95% CIs do not overlap")
    return lines


def curation_rows(report: dict[str, Any]) -> list[list[str]]:
    """``[name, value]`` rows from ``report["curation"]``; nested counts become ``key: reason``."""
    rows = []
    for key, value in (report.get("curation") or {}).items():
        if isinstance(value, dict):
            rows += [[f"{key}: {k}", str(v)] for k, v in value.items()]
        else:
            rows.append([key, str(value)])
    return rows
