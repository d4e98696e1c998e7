"""Stage 6: turn a run directory's eval summaries and manifests into ``report.json``,
``report.md`` and a self-contained ``report.html`` (written into the run directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ReportConfig
from ..errors import InputError
from .build import build_report, write_report

__all__ = ["build_report", "write_report", "run", "run_dir_report"]


def run_dir_report(cfg: ReportConfig | None, run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Build the report (``kwargs`` go to :func:`build_report`: ``task``, ``teacher_calls``,
    ``cached_teacher_calls``, ``wall_seconds``, ``recipe_name``), write it in ``cfg.formats``
    plus ``report.json``, and return the dict."""
    cfg = cfg or ReportConfig()
    run_dir = Path(run_dir)
    _check_folder(run_dir)
    report = _check_evaluated(build_report(run_dir, **kwargs), run_dir)
    write_report(run_dir, report, list(cfg.formats))
    return report


def _check_folder(run_dir: Path) -> None:
    if not run_dir.is_dir():  # a report never creates the folder it reads
        raise InputError("run folder not found" if not run_dir.exists() else "not a folder", file=run_dir)


def _check_evaluated(report: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    if not report["models"]:  # an empty report would look like a finished run
        raise InputError("no evaluation to report: none of eval/teacher, eval/student_before, "
                         "eval/student_after has a summary.json; run `reasondistill run` (or `reasondistill "
                         "evaluate --out RUN_DIR/eval/<model>`) first", file=run_dir)
    return report


def run(recipe: Any, layout: Any, *, this_run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report stage over a run folder. ``this_run`` holds what the invocation that calls it
    spent (``teacher_calls``, ``cached_teacher_calls``, ``wall_seconds``, ``peak_rss_mb``); a
    report written on its own spent nothing."""
    spent = {"teacher_calls": 0, "cached_teacher_calls": 0, "wall_seconds": 0.0, **(this_run or {})}
    _check_folder(layout.root)
    report = build_report(layout.root, task=recipe.problems.task_name(), recipe_name=recipe.name,
                          teacher_calls=spent["teacher_calls"], cached_teacher_calls=spent["cached_teacher_calls"],
                          wall_seconds=spent["wall_seconds"])
    _check_evaluated(report, layout.root)
    if "peak_rss_mb" in spent:
        report["peak_rss_mb"] = report["this_run"]["peak_rss_mb"] = spent["peak_rss_mb"]
    write_report(layout.root, report, list(recipe.report.formats))
    return report
