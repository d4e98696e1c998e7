"""Read tabular problem files row by row, keeping each row's position for error messages.

Every reader returns a :class:`Table`: its column names when the format declares them
(CSV header, parquet/HF schema) and an iterator of ``(position, row)`` where ``row`` is a dict
or a :class:`RowError` for a row that could not be read. Yielding errors instead of raising
lets ``on_error=skip`` step over one bad JSON line and keep reading. Text is UTF-8 with an
optional BOM, decoded line by line so a bad byte is reported at its line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import io
from ..errors import ConfigError, InputError
from .base import RowError

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


@dataclass
class Table:
    path: Path
    unit: str  # "line" (JSONL, CSV: 1-based file line) or "row" (1-based record number)
    columns: list[str] | None
    rows: Iterator[tuple[int, dict[str, Any] | RowError]]
    split: str | None = None  # HF DatasetDict split that was read

    def error(self, reason: str, message: str, pos: int, field: str | None = None) -> RowError:
        if self.unit == "row":
            message += f" (row {pos})"
        return RowError(reason, message, file=self.path, line=pos, field=field)


def read_table(path: Path, split: str | None = None, default_split: tuple[str, ...] = ("train",)) -> Table:
    """Open ``path`` by its suffix, or as an HF ``save_to_disk`` folder."""
    if not path.exists():
        raise InputError("file not found (problems.source is a path unless it is 'reasoning_gym')",
                         file=path)
    if path.is_dir():
        return _hf_folder(path, split, default_split)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"{path}: unsupported problem file type {suffix or '(none)'!r}; "
                          f"use {', '.join(SUFFIXES)} or a datasets save_to_disk folder")
    return {".jsonl": _jsonl, ".json": _json, ".parquet": _parquet, ".csv": _csv}[suffix](path)


def _jsonl(path: Path) -> Table:
    def rows() -> Iterator[tuple[int, dict | RowError]]:
        for lineno, line in io.iter_lines(path):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, RowError("invalid_json", f"invalid JSON ({e.msg} at column {e.colno})",
                                       file=path, line=lineno)
                continue
            if not isinstance(obj, dict):
                yield lineno, RowError("not_an_object", f"expected a JSON object, got "
                                       f"{type(obj).__name__}", file=path, line=lineno)
                continue
            yield lineno, obj

    return Table(path, "line", None, rows())


def _json(path: Path) -> Table:
    try:
        data = json.loads(io.read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", file=path, line=e.lineno) from None
    if not isinstance(data, list):
        raise InputError(f"expected a JSON list of objects, got {type(data).__name__}", file=path)
    table = Table(path, "row", None, iter(()))

    def rows() -> Iterator[tuple[int, dict | RowError]]:
        for i, obj in enumerate(data, 1):
            if isinstance(obj, dict):
                yield i, obj
            else:
                yield i, table.error("not_an_object", f"expected a JSON object, got {type(obj).__name__}", i)

    table.rows = rows()
    return table


def _csv(path: Path) -> Table:
    """Rows as dicts keyed by the header. A row with more or fewer cells than the header is a
    ``cell_count`` error: an unquoted comma (``What is 1,000 + 3?``) would otherwise shift
    every later cell into the wrong column without a word."""
    lines = io.iter_lines(path)
    reader = csv.reader(line for _, line in lines)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise InputError(f"invalid CSV header ({e})", file=path, line=1) from None
    columns = [c.strip() for c in header or []]
    if dupes := sorted({c for c in columns if columns.count(c) > 1}):
        raise InputError(f"CSV header repeats column(s) {', '.join(map(repr, dupes))}; each column "
                         "needs its own name", file=path, line=1)

    def rows() -> Iterator[tuple[int, dict | RowError]]:
        end = reader.line_num  # the header's last line
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                end = reader.line_num
                yield start, RowError("invalid_csv", f"invalid CSV row ({e})", file=path, line=start)
                continue
            end = reader.line_num
            if len(cells) <= 1 and not "".join(cells).strip():  # a blank line
                continue
            if len(cells) != len(columns):
                hint = ("; quote cells that contain commas, e.g. \"What is 1,000 + 3?\""
                        if len(cells) > len(columns) else "")
                yield start, RowError("cell_count", f"row has {len(cells)} cells but the header has "
                                      f"{len(columns)} ({', '.join(columns)}){hint}", file=path, line=start)
                continue
            yield start, dict(zip(columns, cells))

    return Table(path, "line", columns, rows())


def _parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"cannot read parquet file ({e})", file=path) from None
    return Table(path, "row", list(data.column_names), enumerate(data.to_pylist(), 1))


def _hf_folder(path: Path, split: str | None, default_split: tuple[str, ...]) -> Table:
    if not any((path / f).exists() for f in ("dataset_dict.json", "dataset_info.json", "state.json")):
        raise InputError("folder is not a datasets save_to_disk folder (no dataset_dict.json or "
                         "dataset_info.json)", file=path)
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as e:  # a file of the folder missing (dataset_info.json, state.json, a shard)
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise InputError(f"not a complete datasets save_to_disk folder ({first}); save it again with "
                         "Dataset.save_to_disk", file=path) from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None:  # the first default present, else name the first default in the error
            split = next((s for s in default_split if s in ds), default_split[0])
        if split not in ds:
            raise ConfigError(f"{path}: split {split!r} not found; available splits: {', '.join(ds)}")
        ds = ds[split]
    else:
        split = None  # a plain Dataset has no splits
    return Table(path, "row", list(ds.column_names), enumerate(iter(ds), 1), split=split)
