"""Collect a run directory's eval summaries and stage manifests into one ``report.json`` dict,
and write it (plus Markdown / HTML renderings).

``report.json`` contract (other tools read it): ``task``, ``n_eval``, ``teacher``,
``student_before``, ``student_after`` (each the :func:`~reasondistill.evaluate.metrics.summarize`
dict, so at least ``accuracy`` in 0..1 and ``ci95`` ``[lo, hi]``; ``None`` when that model was
not evaluated), ``teacher_calls``, ``cached_teacher_calls``, ``wall_seconds``. Extras:
``recipe``, ``models``, ``improvement``, ``gap_recovered``, ``improvement_interval`` (after - before,
paired bootstrap over shared problems) and ``gap_recovered_interval`` (problems resampled jointly
across the three models), ``ci_overlap``, ``stages``,
``curation``, ``teachers`` (per teacher: traces, pass rate with ``ci95``, ``mean_tokens``, ``kept``;
see :mod:`.teachers`), ``run_cost`` (what producing the run folder cost, from the stage manifests),
``lineage`` (which problems, teacher, filters and objective produced which checkpoint and score),
``versions``, ``references`` (what each ``run:NAME`` model resolved to), ``device`` (what :mod:`reasondistill.device` detected, from the train manifest or else
an eval one), ``dtype`` (``{"train": autocast dtype, <model>: weights dtype}``).

``teacher_calls``, ``cached_teacher_calls`` and ``wall_seconds`` are what the latest invocation
spent (an unchanged re-run spends nearly nothing), grouped again under ``this_run`` (with
``peak_rss_mb`` when the pipeline wrote the report); ``run_cost`` is what the run itself cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics import gap_recovered, gap_recovered_interval, paired_bootstrap
from ..io import read_json, read_records, read_summary, write_json
from ..layout import FILES, MANIFEST, Layout
from ..records import EvalSample, EvalSummary, StageManifest
from . import html, markdown
from .format import MODELS
from .teachers import teacher_stats

STAGES = ("problems", "probe", "generate", "verify", "curate", "pairs", "train", "eval")
FORMATS = ("json", "md", "html")


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
    layout = Layout(run_dir)
    read: dict[str, EvalSummary | None] = {}
    for model in MODELS:
        path = layout.eval_file(model, "summary")
        read[model] = read_summary(path) if path.is_file() else None
    summaries = {m: s.to_json() if s else None for m, s in read.items()}  # as report.json embeds them

    manifests: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        path = layout.manifest(stage)
        if path.is_file():
            m = read_json(path)
            if isinstance(m, dict):
                manifests[stage] = m
    for model in MODELS:  # each evaluated model has its own manifest under eval/<model>/
        path = layout.eval_dir(model) / MANIFEST
        if path.is_file() and isinstance(m := read_json(path), dict):
            manifests[f"eval {model}"] = m

    present = [m for m in MODELS if summaries[m] is not None]
    n_source = read["student_after"] or next((read[m] for m in present), None)
    teacher, before, after = (float(s.accuracy) if (s := read[m]) else None for m in MODELS)

    ci_overlap = None
    if read["student_before"] and read["student_after"]:
        b_lo, b_hi = read["student_before"].ci95
        a_lo, a_hi = read["student_after"].ci95
        ci_overlap = bool(a_lo <= b_hi and b_lo <= a_hi)

    versions: dict[str, Any] = {}
    for stage in reversed(STAGES):  # train's versions name the most libraries
        if isinstance(manifests.get(stage, {}).get("versions"), dict):
            versions = manifests[stage]["versions"]
            break

    samples = {m: read_records(path, EvalSample, allow_empty=True) if (path := layout.eval_file(m, "samples")).is_file()
               else None for m in MODELS}
    t_s, b_s, a_s = (samples[m] for m in MODELS)

    curate_outputs = manifests.get("curate", {}).get("outputs")
    report: dict[str, Any] = {
        "task": task,
        "recipe": recipe_name,
        "n_eval": int(n_source.n) if n_source else 0,
        **{m: summaries[m] for m in MODELS},
        "models": present,
        "teacher_calls": int(teacher_calls),
        "cached_teacher_calls": int(cached_teacher_calls),
        "wall_seconds": float(wall_seconds),
        "this_run": {"teacher_calls": int(teacher_calls), "cached_teacher_calls": int(cached_teacher_calls),
                     "wall_seconds": float(wall_seconds)},
        "improvement": after - before if after is not None and before is not None else None,
        "gap_recovered": gap_recovered(teacher, before, after),
        # bootstrap intervals over the problems the models share (``reasondistill.bootstrap``)
        "improvement_interval": paired_bootstrap(a_s, b_s) if a_s and b_s else None,
        "gap_recovered_interval": gap_recovered_interval(t_s, b_s, a_s) if t_s and b_s and a_s else None,
        "ci_overlap": ci_overlap,
        "stages": {
            stage: {"wall_seconds": m.get("wall_seconds"), "outputs": m.get("outputs", {})}
            for stage, m in manifests.items()
        },
        "curation": _curation_counts(curate_outputs) if isinstance(curate_outputs, dict) else {},
        "teachers": teacher_stats(layout),
        "run_cost": run_cost(manifests),
        "lineage": lineage(manifests, read.get("student_after")),
        "versions": versions,
        **_numerics(manifests),
    }
    if layout.references_json.is_file():  # run:NAME model references: the checkpoint and its accuracy
        report["references"] = read_json(layout.references_json)
    return report


def write_report(run_dir: Path, report: dict[str, Any], formats: list[str], *,
                 data_dir: Path | None = None) -> list[Path]:
    """Write ``report.json`` (always) and ``report.md`` / ``report.html`` into ``run_dir``; the HTML
    page's traces and plots come from ``data_dir`` (default ``run_dir``; a loop's last round).

    Returns the written paths, ``report.json`` first."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = Layout(run_dir)
    out = layout.report_json
    write_json(out, report)
    written = [out]
    if "md" in formats:
        written.append(markdown.write(layout.report_md, report))
    if "html" in formats:
        written.append(html.write(layout.report_html, report, Path(data_dir or run_dir)))
    return written


def run_cost(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What producing the run folder cost, from the stage manifests as recorded when each stage
    actually ran (a re-run that reuses stages does not reset it): the stages' wall time summed,
    teacher samples drawn and served from the cache, and the peak memory (the largest any stage
    recorded; ``None`` when no manifest recorded one)."""
    read = [StageManifest.of(m) for m in manifests.values()]
    wall = sum(float(m.wall_seconds or 0) for m in read)
    paid = [StageManifest.of(manifests.get(k, {})) for k in ("generate", "eval teacher")]
    peaks = [float(m.peak_rss_mb) for m in read if isinstance(m.peak_rss_mb, (int, float))]
    return {"wall_seconds": round(wall, 1), "teacher_calls": sum(m.calls or 0 for m in paid),
            "cached_teacher_calls": sum(m.cached_calls or 0 for m in paid),
            "peak_rss_mb": max(peaks) if peaks else None}


def _pick(mapping: Any, *keys: str) -> dict[str, Any]:
    """The ``keys`` of ``mapping`` that are present (``{}`` when it is not a dict)."""
    return {k: mapping[k] for k in keys if k in mapping} if isinstance(mapping, dict) else {}


def lineage(manifests: dict[str, dict[str, Any]], after: EvalSummary | None) -> dict[str, Any]:
    """Which problems, teacher, filters and objective produced which checkpoint and score, read
    from the stage manifests (a part is ``None`` when its stage has no manifest)."""
    def stage(name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        m = manifests.get(name)
        if m is None:
            return None
        config, outputs = m.get("config"), m.get("outputs")
        return (config if isinstance(config, dict) else {}), (outputs if isinstance(outputs, dict) else {})

    out: dict[str, Any] = {k: None for k in ("problems", "teacher", "verify", "filters", "pairs", "objective",
                                             "checkpoint", "score")}
    if (p := stage("problems")) is not None:
        out["problems"] = {**_pick(p[0], "source", "task", "task_config", "eval_source", "seed"),
                           **_pick(p[1], "n_train", "n_eval", "skipped")}
    if (g := stage("generate")) is not None:
        teacher_cfg = g[0].get("teacher")
        listed = [t for t in teacher_cfg if isinstance(t, dict)] if isinstance(teacher_cfg, list) else []
        gen = _pick(g[0].get("generate"), "samples", "temperature", "rationalize")
        named = {}
        if listed:  # a teacher list: each one's backend and sample count, in list order
            named = {"backend": ", ".join(f"{t.get('name')}: {t.get('backend')}" for t in listed)}
            gen["samples"] = "/".join(str(t.get("samples") or gen.get("samples", "?")) for t in listed)
        out["teacher"] = {**_pick(teacher_cfg, "backend", "model"), **named,
                          **_pick(g[1], "teacher", "teacher_identity", "n_traces", "n_hinted"), **gen}
    if (v := stage("verify")) is not None:
        out["verify"] = {**_pick(v[0], "verifier"), **_pick(v[1].get("counts"), "n", "passed", "pass_rate")}
    if (c := stage("curate")) is not None:
        counts = c[1].get("counts") if isinstance(c[1].get("counts"), dict) else c[1]
        out["filters"] = {"policies": list(c[1].get("policies") or []),
                          "dropped": dict(counts.get("dropped") or {}),
                          **_pick(counts, "traces", "kept", "kept_hinted", "negatives", "rejected"),
                          "config": c[0].get("curate", {})}
    if (pr := stage("pairs")) is not None:
        out["pairs"] = dict(pr[1].get("counts") or {})
    if (t := stage("train")) is not None:
        out["objective"] = {**_pick(t[0], "method", "student", "objective", "lora", "epochs", "max_steps",
                                    "learning_rate", "batch_size"),
                            **_pick(t[1], "steps", "train_loss", "n_examples")}
        if t[1].get("model_dir"):  # relative to the run folder (the report sits there), wherever it was trained
            out["checkpoint"] = f"{FILES['checkpoint'][0]}/{Path(t[1]['model_dir']).name}"
    if after:
        out["score"] = {"model": "student_after", "accuracy": after.accuracy, "ci95": after.ci95, "n": after.n}
    return out
