"""``report.html``: one self-contained page (inline CSS, inline PNG, no scripts, no external URL)
with the accuracy table, the run's cost and lineage, plots (accuracy with intervals, accuracy vs
tokens per answer, trace lengths before and after curation, problem difficulty, training curves;
each replaced by a note when its data is missing), and a trace browser over held-out outputs
and curated examples (``reasondistill view`` browses all of them).

Every piece of user or model text goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..layout import Layout
from ..io import atomic_open, iter_jsonl, read_records
from ..records import EvalSample
from . import data, plots
from .format import (ANSWER_HEADER, MODEL_LABELS, MODELS, ROUND_HEADER, TABLE_HEADER, answer_rows, audit_lines,
                     cost_lines, curation_rows, fmt_seconds, headline, lineage_rows, model_rows, round_rows,
                     sampled_rows)
from .teachers import HEADER as TEACHER_HEADER, teacher_rows

MAX_PROBLEMS = 50
MAX_TRAIN_EXAMPLES = 5
MAX_TEXT = 6000

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#212529;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #dee2e6;padding:.3rem .7rem;text-align:left}
th{background:#f1f3f5}
.muted{color:#6c757d}.chart img{max-width:100%;height:auto}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1rem}
.chart{border:1px solid #dee2e6;border-radius:4px;padding:.5rem;margin:0}
.chart figcaption{font-weight:600;font-size:.95rem;margin-bottom:.3rem}
.chart .note{color:#6c757d;font-style:italic;padding:2rem 0;text-align:center}
details{border:1px solid #dee2e6;border-radius:4px;margin:.35rem 0;padding:.3rem .6rem}
details>summary{cursor:pointer}details[open]>summary{margin-bottom:.4rem}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f9fa;padding:.5rem;border-radius:4px;
max-height:24rem;overflow:auto;margin:.2rem 0 .6rem}
.badge{display:inline-block;border-radius:3px;padding:0 .4rem;font-size:.8rem;font-weight:600;margin-right:.3rem}
.pass{background:#d3f9d8;color:#2b8a3e}.fail{background:#ffe3e3;color:#c92a2a}.none{background:#e9ecef;color:#495057}
.model{font-weight:600;margin-top:.4rem}code{background:#f1f3f5;padding:0 .2rem;border-radius:3px}
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT} more characters)"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _badge(passed: bool | None) -> str:
    if passed is None:
        return '<span class="badge none">n/a</span>'
    return '<span class="badge pass">pass</span>' if passed else '<span class="badge fail">fail</span>'


# ---------------------------------------------------------------------------
# data for the trace browser (all optional: problems are reported, not raised)


def _greedy_samples(run_dir: Path, notes: list[str]) -> dict[str, dict[str, EvalSample]]:
    """``{model: {problem_id: greedy sample}}`` for the models whose samples.jsonl exists."""
    out: dict[str, dict[str, EvalSample]] = {}
    for model in MODELS:
        path = Layout(run_dir).eval_file(model, "samples")
        if not path.is_file():
            continue
        try:
            records = read_records(path, EvalSample, allow_empty=True)
        except InputError as e:
            notes.append(f"could not read {model} samples: {e}")
            continue
        by_id: dict[str, EvalSample] = {}
        for s in records:
            if s.sample_idx == 0:
                by_id.setdefault(s.problem_id, s)
        out[model] = by_id
    return out


def _pick_problems(samples: dict[str, dict[str, EvalSample]]) -> list[str]:
    """Up to ``MAX_PROBLEMS`` ids, problems where the models disagree first, else file order."""
    order: list[str] = []
    seen: set[str] = set()
    for model in ("student_after", "student_before", "teacher"):
        for pid in samples.get(model, {}):
            if pid not in seen:
                seen.add(pid)
                order.append(pid)

    def disagree(pid: str) -> bool:
        results = {by_id[pid].passed for by_id in samples.values() if pid in by_id}
        return len(results) > 1

    split = [pid for pid in order if disagree(pid)] + [pid for pid in order if not disagree(pid)]
    return split[:MAX_PROBLEMS]


def _problem_texts(run_dir: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Prompt and gold answer for ``ids`` from the run's problem files."""
    found: dict[str, dict[str, Any]] = {}
    layout = Layout(run_dir)
    for path in (layout.eval_problems, layout.train_problems):
        if not ids or not path.is_file():
            continue
        try:
            for _, obj in iter_jsonl(path, allow_empty=True):
                pid = obj.get("id")
                if isinstance(pid, str) and pid in ids and "prompt" in obj and pid not in found:
                    found[pid] = obj
        except (InputError, OSError, UnicodeDecodeError):
            continue
    return found


def _train_examples(run_dir: Path, notes: list[str]) -> list[dict[str, Any]]:
    path = Layout(run_dir).curated
    if not path.is_file():
        return []
    out = []
    try:
        for _, obj in iter_jsonl(path, allow_empty=True):
            out.append(obj)
            if len(out) >= MAX_TRAIN_EXAMPLES:
                break
    except (InputError, OSError, UnicodeDecodeError) as e:
        notes.append(f"could not read curated examples: {e}")
    return out


# ---------------------------------------------------------------------------
# sections


def _figure(title: str, png: bytes | None, note: str) -> str:
    """One plot as an inline PNG, or ``note`` in its place."""
    if png is None:
        body = f'<div class="note">{esc(note)}</div>'
    else:
        body = f'<img alt="{esc(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
    return f'<figure class="chart"><figcaption>{esc(title)}</figcaption>{body}</figure>'


def _no_plot(reason: str) -> str:
    return reason if plots.available() else "matplotlib is not installed: no plot"


def _plots(report: dict[str, Any], run_dir: Path) -> str:
    layout = Layout(run_dir)
    figures = [_figure("Accuracy with 95% intervals", plots.accuracy_png(report),
                       _no_plot("no evaluation summaries (eval/<model>/summary.json)")),
               _figure("Accuracy vs tokens per answer", plots.accuracy_vs_tokens_png(report),
                       _no_plot("no evaluation summaries with token counts"))]
    lengths, note = data.trace_lengths(layout)
    figures.append(_figure("Trace length before and after curation",
                           plots.length_hist_png(*lengths) if lengths else None,
                           _no_plot(note or "no traces")))
    rates, note = data.pass_rates(layout)
    figures.append(_figure("Problem difficulty (teacher pass rate per problem)",
                           plots.difficulty_png(*rates) if rates else None,
                           _no_plot(note or "no problem has unhinted teacher samples")))
    rows, note = data.loss_log(layout)
    figures.append(_figure("Training curves", plots.loss_png(rows) if rows else None,
                           _no_plot(note or "the training log has no loss values")))
    return '<div class="charts">' + "".join(figures) + "</div>"


def _trace_browser(run_dir: Path, notes: list[str]) -> str:
    samples = _greedy_samples(run_dir, notes)
    ids = _pick_problems(samples)
    if not ids:
        return '<p class="muted">No held-out samples found.</p>'
    problems = _problem_texts(run_dir, set(ids))
    parts = [f'<p class="muted">Greedy outputs for {len(ids)} held-out problems '
             f'(problems where the models disagree first).</p>']
    for pid in ids:
        badges = "".join(
            f'<span class="muted">{esc(MODEL_LABELS[m])}</span> {_badge(samples[m][pid].passed)}'
            for m in MODELS if m in samples and pid in samples[m])
        body = []
        prob = problems.get(pid)
        if prob:
            body.append(f'<div class="model">question</div><pre>{esc(_clip(str(prob.get("prompt", ""))))}</pre>')
            if "answer" in prob:
                body.append(f'<div>gold answer: <code>{esc(prob["answer"])}</code></div>')
        for m in MODELS:
            s = samples.get(m, {}).get(pid)
            if s is None:
                continue
            extracted = "none" if s.extracted is None else s.extracted
            trunc = ' <span class="badge none">truncated</span>' if s.finish_reason == "length" else ""
            body.append(f'<div class="model">{esc(MODEL_LABELS[m])} {_badge(s.passed)}{trunc} '
                        f'extracted: <code>{esc(extracted)}</code></div><pre>{esc(_clip(s.text))}</pre>')
        parts.append(f"<details><summary><code>{esc(pid)}</code> {badges}</summary>{''.join(body)}</details>")
    return "".join(parts)


def _messages(messages: Any) -> str:
    if isinstance(messages, str):
        return f"<pre>{esc(_clip(messages))}</pre>"
    if not isinstance(messages, list):
        return ""
    parts = []
    for msg in messages:
        if isinstance(msg, dict):
            parts.append(f'<div class="muted">{esc(msg.get("role", ""))}</div>'
                         f'<pre>{esc(_clip(str(msg.get("content", ""))))}</pre>')
    return "".join(parts)


def _curated(run_dir: Path, notes: list[str]) -> str:
    examples = _train_examples(run_dir, notes)
    if not examples:
        return '<p class="muted">No curated training examples found.</p>'
    parts = []
    for i, ex in enumerate(examples):
        meta = ex.get("meta") if isinstance(ex.get("meta"), dict) else {}
        label = meta.get("problem_id") or meta.get("trace_id") or f"example {i + 1}"
        hinted = ' <span class="badge none">rationalized</span>' if meta.get("hinted") else ""
        parts.append(f"<details><summary><code>{esc(label)}</code>{hinted}</summary>"
                     f"<div class=\"model\">prompt</div>{_messages(ex.get('prompt'))}"
                     f"<div class=\"model\">completion</div>{_messages(ex.get('completion'))}</details>")
    return "".join(parts)


def render(report: dict[str, Any], run_dir: Path) -> str:
    run_dir = Path(run_dir)
    notes: list[str] = []
    task = report.get("task", "")
    out = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width, initial-scale=1">'
           f"<title>reasondistill report: {esc(task)}</title><style>{CSS}</style></head><body>",
           f"<h1>reasondistill report: {esc(task)}</h1>"]
    meta = []
    if report.get("recipe"):
        meta.append(f"recipe <code>{esc(report['recipe'])}</code>")
    meta.append(f"{esc(report.get('n_eval', 0))} held-out problems")
    out.append(f'<p class="muted">{" · ".join(meta)}</p>')
    out.append('<ul class="cost">' + "".join(f"<li>{esc(line)}</li>" for line in cost_lines(report)) + "</ul>")

    out.append("<h2>Accuracy</h2>")
    rows = model_rows(report)
    out.append(_table(TABLE_HEADER, rows) if rows else '<p class="muted">No evaluation summaries found.</p>')
    lines = headline(report)
    if lines:
        out.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>")
    arows = answer_rows(report)
    if arows:
        out.append("<h2>Answers</h2>" + _table(ANSWER_HEADER, arows))
    header, srows = sampled_rows(report)
    if srows:
        out.append("<h2>Sampled generations</h2>" + _table(header, srows))
    if alines := audit_lines(report):
        out.append("<h2>Checker audit</h2><ul>" + "".join(f"<li>{esc(line)}</li>" for line in alines) + "</ul>")
    rrows = round_rows(report)
    if rrows:
        out.append("<h2>Rounds (reasondistill loop)</h2>" + _table(ROUND_HEADER, rrows)
                   + _figure("Held-out accuracy per round", plots.rounds_png(report["loop"]),
                             _no_plot("no round was evaluated")))
    out.append("<h2>Plots</h2>" + _plots(report, run_dir))
    lrows = lineage_rows(report)
    if lrows:
        out.append("<h2>Lineage</h2>" + _table(["step", "what"], lrows))

    stages = report.get("stages") or {}
    if stages:
        out.append("<h2>Stages</h2>" + _table(
            ["stage", "wall time"], [[s, fmt_seconds(v.get("wall_seconds"))] for s, v in stages.items()]))
    crows = curation_rows(report)
    if crows:
        out.append("<h2>Curation</h2>" + _table(["count", "value"], crows))
    if trows := teacher_rows(report):
        out.append("<h2>Teachers</h2>" + _table(TEACHER_HEADER, trows)
                   + '<p class="muted">Pass rate over unhinted graded traces; kept: curated training examples.</p>')

    out.append("<h2>Trace browser: held-out problems</h2>"
               '<p class="muted">Every trace, with filters and search: <code>reasondistill view RUN_DIR</code>.</p>'
               + _trace_browser(run_dir, notes))
    out.append("<h2>Curated training examples</h2>" + _curated(run_dir, notes))
    if notes:
        out.append("<ul>" + "".join(f'<li class="muted">{esc(n)}</li>' for n in notes) + "</ul>")
    versions = report.get("versions") or {}
    if versions:
        out.append('<h2>Versions</h2><p class="muted">'
                   + " · ".join(f"{esc(k)} {esc(v)}" for k, v in versions.items()) + "</p>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write(path: Path, report: dict[str, Any], run_dir: Path) -> Path:
    with atomic_open(path) as fh:
        fh.write(render(report, run_dir))
    return Path(path)
