"""``report.md``: the report as a readable Markdown summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_open
from .format import (ANSWER_HEADER, ROUND_HEADER, TABLE_HEADER, answer_rows, audit_lines, cost_lines, curation_rows,
                     fmt_seconds, headline, lineage_rows, model_rows, round_rows, sampled_rows)
from .teachers import HEADER as TEACHER_HEADER, teacher_rows


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render(report: dict[str, Any]) -> str:
    title = f"# reasondistill report: {report.get('task', '')}"
    out = [title, ""]
    if report.get("recipe"):
        out += [f"Recipe: `{report['recipe']}`", ""]
    out += [f"Held-out problems: {report.get('n_eval', 0)}", ""]

    rows = model_rows(report)
    out += ["## Accuracy", ""]
    out += table(TABLE_HEADER, rows) if rows else ["No evaluation summaries found."]
    out.append("")
    for line in headline(report):
        out.append(f"- {line}")
    if headline(report):
        out.append("")

    arows = answer_rows(report)
    if arows:
        out += ["## Answers", ""] + table(ANSWER_HEADER, arows) + [""]
    header, srows = sampled_rows(report)
    if srows:
        out += ["## Sampled generations", ""] + table(header, srows) + [""]
    if alines := audit_lines(report):
        out += ["## Checker audit", ""] + [f"- {line}" for line in alines] + [""]

    rrows = round_rows(report)
    if rrows:
        out += ["## Rounds (reasondistill loop)", ""] + table(ROUND_HEADER, rrows) + [""]

    out += ["## Cost", ""] + [f"- {line}" for line in cost_lines(report)] + [""]

    lrows = lineage_rows(report)
    if lrows:
        out += ["## Lineage", ""] + table(["step", "what"], lrows) + [""]

    stages = report.get("stages") or {}
    if stages:
        out += ["## Stages", ""]
        out += table(["stage", "wall time"], [[s, fmt_seconds(v.get("wall_seconds"))] for s, v in stages.items()])
        out.append("")

    crows = curation_rows(report)
    if crows:
        out += ["## Curation", ""] + table(["count", "value"], crows) + [""]

    trows = teacher_rows(report)
    if trows:
        out += ["## Teachers", ""] + table(TEACHER_HEADER, trows)
        out += ["", "Pass rate over unhinted graded traces; kept: curated training examples.", ""]

    versions = report.get("versions") or {}
    if versions:
        out += ["## Versions", ""] + [f"- {k}: {v}" for k, v in versions.items()] + [""]
    out += ["Plots (accuracy, accuracy vs tokens, trace lengths, difficulty, training curves) are in "
            "`report.html`; browse every trace with `reasondistill view RUN_DIR`.", ""]
    return "\n".join(out)


def write(path: Path, report: dict[str, Any]) -> Path:
    with atomic_open(path) as fh:
        fh.write(render(report))
    return Path(path)
