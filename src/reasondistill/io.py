"""File I/O shared by every stage: atomic JSONL/JSON writes, strict JSONL reads,
run-folder manifests and content hashes.

Outputs are written to a temporary file in the same folder and renamed into
place, so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError
from .layout import MANIFEST
from .records import from_dict, to_dict

T = TypeVar("T")

log = logging.getLogger(__name__)


def _as_dict(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else to_dict(record)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside ``path``; on clean exit fsync and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Atomically write records (dataclasses or dicts) one JSON object per line."""
    n = 0
    with atomic_open(path) as fh:
        for rec in records:
            fh.write(json.dumps(_as_dict(rec), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", file=path, line=e.lineno) from None


def iter_jsonl(path: str | Path, *, allow_empty: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)``; raise :class:`InputError` naming the bad line."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    seen = False
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"invalid JSON ({e.msg} at column {e.colno})", file=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", file=path, line=lineno)
            seen = True
            yield lineno, obj
    if not seen and not allow_empty:
        raise InputError("file is empty: no records", file=path)


def read_records(path: str | Path, cls: type[T], *, allow_empty: bool = False) -> list[T]:
    """Read a JSONL file of ``cls`` records, naming file/line/field on a bad row."""
    out: list[T] = []
    for lineno, obj in iter_jsonl(path, allow_empty=allow_empty):
        try:
            out.append(from_dict(cls, obj))
        except TypeError as e:
            # dataclass __init__ says e.g. "missing 1 required positional argument: 'answer'"
            msg = str(e)
            field = msg.rsplit("'", 2)[-2] if msg.count("'") >= 2 else None
            raise InputError(f"not a valid {cls.__name__} record ({msg})", file=path, line=lineno,
                             field=field) from None
    return out


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def hash_inputs(paths: Iterable[str | Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            out[str(p)] = sha256_file(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    out[str(f)] = sha256_file(f)
    return out


_VERSIONED = ("reasondistill", "torch", "transformers", "trl", "peft", "accelerate", "datasets",
              "reasoning-gym", "math-verify", "numpy")


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_manifest(out_dir: str | Path, *, stage: str, config: Any, inputs: dict[str, str],
                   outputs: dict[str, Any], started: float, extra: dict[str, Any] | None = None) -> dict:
    """Record what produced this stage's outputs. Written last: its presence marks the stage done."""
    out_dir = Path(out_dir)
    manifest = {
        "stage": stage,
        "config": config,
        "config_hash": sha256_json(config),
        "inputs": inputs,
        "outputs": outputs,
        "output_hashes": hash_inputs(out_dir / name for name in outputs.get("files", [])),
        "versions": library_versions(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
    }
    if extra:
        manifest.update(extra)
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def completed_manifest(out_dir: str | Path, config: Any, inputs: dict[str, str]) -> dict | None:
    """The manifest of a finished stage whose config and inputs match, else ``None``."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if m.get("config_hash") != sha256_json(config) or m.get("inputs") != inputs:
        return None
    if (m.get("outputs") or {}).get("n_errors"):  # some outputs failed (a teacher request): retry those
        return None
    for rel, digest in m.get("output_hashes", {}).items():
        p = Path(rel)
        if not p.exists() or sha256_file(p) != digest:
            return None
    return m


def cached_stage(out_dir: str | Path, *, stage: str, config: Any, inputs: Iterable[str | Path],
                 body: Callable[[], dict[str, Any]], extra: dict[str, Any] | None = None) -> dict:
    """The skip-if-finished / run / write-manifest step every stage shares.

    When ``out_dir`` holds a manifest for the same ``config`` and input hashes whose outputs
    are intact, that manifest is returned with ``this_run = {"skipped": True}`` and ``body``
    never runs (no model is loaded), unless its ``outputs`` count ``n_errors`` (failed teacher
    requests, which the sample cache does not keep): then it runs again. Otherwise ``body()``
    writes the outputs and returns the manifest's ``outputs`` (``files`` lists the ones to
    hash); the manifest is written last, so an interrupted stage is never taken for a finished one.
    """
    hashes = hash_inputs(inputs)
    done = completed_manifest(out_dir, config, hashes)
    if done is not None:
        log.info("%s: %s is up to date, reusing it", stage, out_dir)
        return {**done, "this_run": {"skipped": True}}
    started = time.time()
    outputs = body()
    manifest = write_manifest(out_dir, stage=stage, config=config, inputs=hashes, outputs=outputs,
                              started=started, extra=extra)
    return {**manifest, "this_run": {"skipped": False}}


def line_of(path: str | Path, index: int) -> int:
    """Line number of the ``index``-th record of a JSONL file (blank lines are skipped by readers)."""
    for i, (lineno, _) in enumerate(iter_jsonl(path, allow_empty=True)):
        if i == index:
            return lineno
    return index + 1


def index_by_id(records: list[Any], path: str | Path, attr: str = "id") -> dict[str, Any]:
    """``{record.<attr>: record}``; a repeated id is an :class:`InputError` naming its line."""
    out: dict[str, Any] = {}
    for i, rec in enumerate(records):
        key = getattr(rec, attr)
        if key in out:
            raise InputError(f"duplicate {attr} {key!r}", file=path, line=line_of(path, i), field=attr)
        out[key] = rec
    return out


def check_problem_ids(traces: list[Any], problems: dict[str, Any], traces_path: str | Path,
                      problems_path: str | Path) -> None:
    """Every trace names a problem of ``problems``; else an :class:`InputError` at its line."""
    for i, trace in enumerate(traces):
        if trace.problem_id not in problems:
            raise InputError(f"trace {trace.id!r} refers to problem {trace.problem_id!r}, which is not in "
                             f"{problems_path}", file=traces_path, line=line_of(traces_path, i), field="problem_id")


def write_text(path: str | Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_open(path) as fh:
        fh.write(text)
