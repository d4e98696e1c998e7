"""Stage 6: turn a run directory's eval summaries and manifests into ``report.json``,
``report.md`` and a self-contained ``report.html`` (written into the run directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ReportConfig
from ..errors import InputError
from .build import build_report, write_report

__all__ = ["build_report", "write_report", "run"]


def run(cfg: ReportConfig | None, run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Build the report (``kwargs`` go to :func:`build_report`: ``task``, ``teacher_calls``,
    ``cached_teacher_calls``, ``wall_seconds``, ``recipe_name``), write it in ``cfg.formats``
    plus ``report.json``, and return the dict."""
    cfg = cfg or ReportConfig()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():  # a report never creates the folder it reads
        raise InputError("run folder not found" if not run_dir.exists() else "not a folder", file=run_dir)
    report = build_report(run_dir, **kwargs)
    if not report["models"]:  # an empty report would look like a finished run
        raise InputError("no evaluation to report: none of eval/teacher, eval/student_before, "
                         "eval/student_after has a summary.json; run `reasondistill run` (or `reasondistill "
                         "evaluate --out RUN_DIR/eval/<model>`) first", file=run_dir)
    write_report(run_dir, report, list(cfg.formats))
    return report
