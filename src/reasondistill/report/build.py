"""Collect a run directory's eval summaries and stage manifests into one ``report.json`` dict,
and write it (plus Markdown / HTML renderings).

``report.json`` contract (other tools read it): ``task``, ``n_eval``, ``teacher``,
``student_before``, ``student_after`` (each the :func:`~reasondistill.evaluate.metrics.summarize`
dict, so at least ``accuracy`` in 0..1 and ``ci95`` ``[lo, hi]``; ``None`` when that model was
not evaluated), ``teacher_calls``, ``cached_teacher_calls``, ``wall_seconds``. Extras:
``recipe``, ``models``, ``improvement``, ``gap_recovered``, ``ci_overlap``, ``stages``,
``curation``, ``versions``, ``device`` (what :mod:`reasondistill.device` detected, from the train
manifest or else an eval one), ``dtype`` (``{"train": autocast dtype, <model>: weights dtype}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evaluate.metrics import gap_recovered
from ..io import MANIFEST, read_json, write_json

MODELS = ("teacher", "student_before", "student_after")
MODEL_LABELS = {"teacher": "teacher", "student_before": "student (before)", "student_after": "student (after)"}
STAGES = ("problems", "generate", "verify", "curate", "train", "eval")
FORMATS = ("json", "md", "html")


def summary_path(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / "eval" / model / "summary.json"


def samples_path(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / "eval" / model / "samples.jsonl"


def _accuracy(entry: dict[str, Any] | None) -> float | None:
    if not entry or entry.get("accuracy") is None:
        return None
    return float(entry["accuracy"])


def _curation_counts(outputs: dict[str, Any]) -> dict[str, Any]:
    """Numbers (and one level of ``{reason: count}`` mappings) from the curate manifest's outputs."""
    counts: dict[str, Any] = {}
    for key, value in outputs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            counts[key] = value
        elif isinstance(value, dict):
            sub = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if sub:
                counts[key] = sub
    return counts


def _numerics(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``device`` from the train manifest (else the first eval one that has it) and ``dtype`` per
    stage that recorded one: ``train`` (autocast dtype) and each evaluated model (weights dtype)."""
    keys = ["train", *(f"eval {model}" for model in MODELS)]
    device = next((manifests[k]["device"] for k in keys if "device" in manifests.get(k, {})), None)
    dtype = {}
    for key in keys:
        outputs = manifests.get(key, {}).get("outputs")
        if isinstance(outputs, dict) and outputs.get("dtype"):
            dtype[key.removeprefix("eval ")] = outputs["dtype"]
    return {"device": device, "dtype": dtype}


def build_report(run_dir: Path, *, task: str, teacher_calls: int, cached_teacher_calls: int,
                 wall_seconds: float, recipe_name: str = "") -> dict[str, Any]:
    """Read ``eval/<model>/summary.json`` and ``<stage>/manifest.json`` (whichever exist) into
    the ``report.json`` dict. Missing files are tolerated; malformed ones raise ``InputError``."""
    run_dir = Path(run_dir)
    summaries: dict[str, dict[str, Any] | None] = {}
    for model in MODELS:
        path = summary_path(run_dir, model)
        summaries[model] = read_json(path) if path.is_file() else None

    manifests: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        path = run_dir / stage / MANIFEST
        if path.is_file():
            m = read_json(path)
            if isinstance(m, dict):
                manifests[stage] = m
    for model in MODELS:  # each evaluated model has its own manifest under eval/<model>/
        path = run_dir / "eval" / model / MANIFEST
        if path.is_file() and isinstance(m := read_json(path), dict):
            manifests[f"eval {model}"] = m

    present = [m for m in MODELS if summaries[m] is not None]
    n_source = summaries["student_after"] or next((summaries[m] for m in present), None)
    teacher, before, after = (_accuracy(summaries[m]) for m in MODELS)

    ci_overlap = None
    if summaries["student_before"] and summaries["student_after"]:
        b_lo, b_hi = summaries["student_before"]["ci95"]
        a_lo, a_hi = summaries["student_after"]["ci95"]
        ci_overlap = bool(a_lo <= b_hi and b_lo <= a_hi)

    versions: dict[str, Any] = {}
    for stage in reversed(STAGES):  # train's versions name the most libraries
        if isinstance(manifests.get(stage, {}).get("versions"), dict):
            versions = manifests[stage]["versions"]
            break

    curate_outputs = manifests.get("curate", {}).get("outputs")
    report: dict[str, Any] = {
        "task": task,
        "recipe": recipe_name,
        "n_eval": int(n_source["n"]) if n_source and "n" in n_source else 0,
        **{m: summaries[m] for m in MODELS},
        "models": present,
        "teacher_calls": int(teacher_calls),
        "cached_teacher_calls": int(cached_teacher_calls),
        "wall_seconds": float(wall_seconds),
        "improvement": after - before if after is not None and before is not None else None,
        "gap_recovered": gap_recovered(teacher, before, after),
        "ci_overlap": ci_overlap,
        "stages": {
            stage: {"wall_seconds": m.get("wall_seconds"), "outputs": m.get("outputs", {})}
            for stage, m in manifests.items()
        },
        "curation": _curation_counts(curate_outputs) if isinstance(curate_outputs, dict) else {},
        "versions": versions,
        **_numerics(manifests),
    }
    return report


def write_report(run_dir: Path, report: dict[str, Any], formats: list[str]) -> list[Path]:
    """Write ``report.json`` (always) and ``report.md`` / ``report.html`` into ``run_dir``.

    Returns the written paths, ``report.json`` first."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "report.json"
    write_json(out, report)
    written = [out]
    if "md" in formats:
        from . import markdown
        written.append(markdown.write(run_dir / "report.md", report))
    if "html" in formats:
        from . import html
        written.append(html.write(run_dir / "report.html", report, run_dir))
    return written


# ---------------------------------------------------------------------------
# formatting shared by the Markdown and HTML renderers


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
