"""Stage 6: turn a run directory's eval summaries and manifests into ``report.json``,
``report.md`` and a self-contained ``report.html`` (written into the run directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ReportConfig
from .build import build_report, write_report

__all__ = ["build_report", "write_report", "run"]


def run(cfg: ReportConfig | None, run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Build the report (``kwargs`` go to :func:`build_report`: ``task``, ``teacher_calls``,
    ``cached_teacher_calls``, ``wall_seconds``, ``recipe_name``), write it in ``cfg.formats``
    plus ``report.json``, and return the dict."""
    cfg = cfg or ReportConfig()
    run_dir = Path(run_dir)
    report = build_report(run_dir, **kwargs)
    write_report(run_dir, report, list(cfg.formats))
    return report
