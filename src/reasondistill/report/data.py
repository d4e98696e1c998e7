"""What the report's plots read from a run folder besides ``report.json``: trace lengths before and
after curation, per-problem pass rates and the training log.

Each reader returns ``(data, note)``: ``data`` is ``None`` and ``note`` says why when the file is
missing or unreadable, so the report shows the note in place of the plot instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import iter_jsonl
from ..layout import Layout

Result = tuple[Any, str]


def _rows(path: Path, what: str) -> tuple[list[dict[str, Any]] | None, str]:
    if not path.is_file():
        return None, f"no {what} ({path.parent.name}/{path.name} not found)"
    try:
        return [obj for _, obj in iter_jsonl(path, allow_empty=True)], ""
    except (InputError, OSError, UnicodeDecodeError) as e:
        return None, f"could not read {what}: {e}"


def _text_of(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    if isinstance(messages, list):
        return "".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return ""


def trace_lengths(layout: Layout) -> Result:
    """``((unit, generated, curated), note)``: the completion length of every generated trace
    (``generate/traces.jsonl``) and of every curated training example (``curate/train.jsonl``).
    The unit is the teacher's completion tokens when every trace recorded them (a curated example
    is measured by the trace it came from), else characters of the completion."""
    traces, note = _rows(layout.traces, "teacher traces")
    if traces is None:
        return None, note
    curated, cnote = _rows(layout.curated, "curated training set")
    curated = curated or []
    tokens: dict[str, int] = {}
    for t in traces:
        n = (t.get("usage") or {}).get("completion_tokens") if isinstance(t.get("usage"), dict) else None
        if isinstance(n, int) and n > 0 and isinstance(t.get("id"), str):
            tokens[t["id"]] = n

    def trace_id(ex: dict[str, Any]) -> Any:
        return ex.get("meta", {}).get("trace_id") if isinstance(ex.get("meta"), dict) else None

    if traces and len(tokens) == len(traces) and all(trace_id(ex) in tokens for ex in curated):
        data = ("tokens", [tokens[t["id"]] for t in traces], [tokens[trace_id(ex)] for ex in curated])
    else:
        data = ("characters", [len(str(t.get("raw", "")).strip()) for t in traces],
                [len(_text_of(ex.get("completion")).strip()) for ex in curated])
    return data, cnote


def pass_rates(layout: Layout) -> Result:
    """``((rates, n_unknown), note)`` from ``curate/pass_rates.jsonl``: the teacher's pass rate per
    problem over its unhinted samples, and how many problems had none (``pass_rate: null``)."""
    rows, note = _rows(layout.pass_rates, "pass rates")
    if rows is None:
        return None, note
    rates = [float(r["pass_rate"]) for r in rows if isinstance(r.get("pass_rate"), (int, float))]
    return (rates, len(rows) - len(rates)), ""


def loss_log(layout: Layout) -> Result:
    """``(rows, note)`` from ``train/loss.jsonl`` (the trainer's logged rows)."""
    rows, note = _rows(layout.loss_log, "training log")
    if rows is not None and not rows:
        return None, ("the training log is empty (fewer steps than train.logging_steps)")
    return rows, note
