"""Problems from a user's file: JSONL, JSON list, parquet, CSV or an HF ``save_to_disk`` folder.

Columns map onto record fields through ``problems.fields``; the gold answer is parsed out of the
answer column (``gold.py``) while the full text is kept as ``meta["solution"]`` for few-shot
rationales. Every error names file, line and field, because a bad row in a 7k-line file is
otherwise a needle in a haystack.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import ProblemsConfig
from ..errors import ConfigError, InputError
from ..records import Problem
from ..io import json_safe
from .base import Loaded, RowError, split_problems
from .gold import parse_answer
from .readers import Table, read_table

# file stems that name a split rather than a dataset: use the folder name instead
_SPLIT_STEM = re.compile(r"^(train|test|testing|validation|valid|val|dev|eval|data)([-_.].*)?$", re.I)


def names(path: Path, split: str | None) -> tuple[str, str]:
    """``(source label, id prefix)``: ``gsm8k/train.jsonl`` -> ``("gsm8k", "gsm8k-train")``."""
    stem = path.name if path.is_dir() else path.stem
    if _SPLIT_STEM.match(stem) and path.parent.name:
        source, prefix = path.parent.name, f"{path.parent.name}-{stem}"
    else:
        source, prefix = stem, stem
    if split:
        prefix = f"{prefix}-{split}"
    return source, prefix


def _missing(table: Table, column: str, record_field: str, row: dict | None, pos: int | None) -> RowError:
    cols = table.columns if table.columns is not None else sorted(row or {})
    msg = (f"missing field {column!r} (columns: {', '.join(cols) or 'none'}); "
           f"map it with problems.fields.{record_field}=<column>")
    if pos is None:
        return RowError("missing_field", msg, file=table.path, line=1 if table.unit == "line" else None,
                        field=column)
    return table.error("missing_field", msg, pos, column)


def to_problem(row: dict[str, Any], pos: int, index: int, table: Table, cfg: ProblemsConfig,
               source: str, prefix: str) -> Problem:
    """Map one row onto a :class:`Problem`, raising :class:`RowError` on anything unusable."""
    fields = cfg.fields
    for record_field in ("prompt", "answer", "id"):
        column = fields.get(record_field)
        if column is not None and column not in row:
            raise _missing(table, column, record_field, row, pos)
    prompt, solution = row[fields["prompt"]], row[fields["answer"]]
    if not isinstance(prompt, str):
        raise table.error("bad_prompt", f"prompt must be a string, got {type(prompt).__name__}", pos,
                          fields["prompt"])
    if not prompt.strip():
        raise table.error("empty_prompt", "prompt is empty", pos, fields["prompt"])
    if isinstance(solution, (int, float)) and not isinstance(solution, bool):
        solution = str(solution)
    if not isinstance(solution, str):
        raise table.error("bad_answer", f"answer must be a string or number, got {type(solution).__name__}",
                          pos, fields["answer"])
    if not solution.strip():
        raise table.error("empty_answer", "answer is empty", pos, fields["answer"])
    answer, fmt = parse_answer(solution, cfg.answer_format)
    if answer is None:
        if fmt == "gsm8k":
            what = "no answer after '####'" if "####" in solution else "no '#### <answer>' marker"
        else:
            what = "no complete \\boxed{...}"
        raise table.error("unparseable_answer", f"answer_format={cfg.answer_format} but {what} in "
                          f"{_preview(solution)}", pos, fields["answer"])
    pid = f"{prefix}-{index}" if "id" not in fields else str(row[fields["id"]])
    used = {fields[f] for f in fields}
    meta: dict[str, Any] = {"solution": solution, "file": str(table.path), "line": pos, "answer_format": fmt}
    if table.split:
        meta["split"] = table.split
    if extra := {k: json_safe(v) for k, v in row.items() if k not in used}:
        meta["extra"] = extra
    return Problem(id=pid, source=source, prompt=prompt.strip(), answer=answer, meta=meta)


def _preview(text: str, n: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else "..." + flat[-n:])


def read_problems(path: Path, cfg: ProblemsConfig, split: str | None, skipped: Counter,
                  default_split: tuple[str, ...] = ("train",)) -> list[Problem]:
    """Every good row of one file, in file order. Bad rows raise, or are counted (``on_error=skip``);
    a file where *every* row is bad raises either way, as that is a mapping or format mistake."""
    try:
        return _read_problems(path, cfg, split, skipped, default_split)
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte {e.start}: {e.reason})", file=path) from None


def _read_problems(path: Path, cfg: ProblemsConfig, split: str | None, skipped: Counter,
                   default_split: tuple[str, ...]) -> list[Problem]:
    table = read_table(path, split, default_split)
    for record_field, column in cfg.fields.items():
        if table.columns is not None and column not in table.columns:
            raise _missing(table, column, record_field, None, None)  # wrong mapping: fails every row
    source, prefix = names(path, table.split)
    problems: list[Problem] = []
    errors: list[RowError] = []
    seen_ids: set[str] = set()
    for index, (pos, row) in enumerate(table.rows):
        try:
            if isinstance(row, RowError):
                raise row
            problem = to_problem(row, pos, index, table, cfg, source, prefix)
            if problem.id in seen_ids:
                raise table.error("duplicate_id", f"id {problem.id!r} repeats an earlier row", pos,
                                  cfg.fields.get("id"))
        except RowError as e:
            if cfg.on_error == "raise":
                raise
            errors.append(e)
            continue
        seen_ids.add(problem.id)
        problems.append(problem)
    if not problems:
        if not errors:
            raise InputError("file is empty: no rows", file=path)
        first = errors[0]
        raise InputError(f"{first.detail} [all {len(errors)} rows are bad, so this is likely a format or "
                         "problems.fields mistake rather than a few rows to skip]",
                         file=first.file, line=first.line, field=first.field)
    skipped.update(e.reason for e in errors)
    return problems


def _shuffled(items: list[Problem], seed: int) -> list[Problem]:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def load(cfg: ProblemsConfig) -> Loaded:
    """Shuffle with ``cfg.seed``; eval takes the first ``n_eval`` (from ``eval_source`` if set)."""
    skipped: Counter = Counter()
    train_pool = _shuffled(read_problems(Path(cfg.source), cfg, cfg.split, skipped), cfg.seed)
    eval_pool = None
    if cfg.eval_source:
        eval_pool = _shuffled(read_problems(Path(cfg.eval_source), cfg, cfg.eval_split, skipped,
                                            default_split=("test", "validation")), cfg.seed)
    train, evals = split_problems(train_pool, cfg.n_train, cfg.n_eval, skipped, eval_pool=eval_pool)
    if not train and cfg.n_train != 0:
        raise ConfigError(f"no training problems left: {cfg.source} has {len(train_pool)} usable rows and "
                          f"eval took {len(evals)}; lower problems.n_eval or set problems.eval_source")
    return Loaded(train=train, eval=evals, skipped=skipped)


def read_problem_set(path: Path, cfg: ProblemsConfig) -> list[Problem]:
    """Held-out problems from ``path`` in file order, for evaluating outside a run folder:
    ``Problem`` records (a problems stage's ``eval.jsonl``), or a dataset file read through
    ``cfg.fields`` like any source; a folder means its ``eval.jsonl`` or ``test.jsonl``
    (a problems folder, or ``../shared/data/gsm8k``)."""
    from .. import io

    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("eval.jsonl", "test.jsonl") if (path / n).is_file()]
        if not found:
            return read_problems(path, cfg, None, Counter(), default_split=("test", "validation"))
        path = found[0]
    if path.suffix == ".jsonl":
        first = next(io.iter_jsonl(path), None)
        if first is not None and {"id", "source", "prompt", "answer"} <= set(first[1]):
            return io.read_records(path, Problem)
    return read_problems(path, cfg, None, Counter(), default_split=("test", "validation"))
