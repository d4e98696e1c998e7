"""File I/O shared by every stage: atomic JSONL/JSON writes, strict JSONL reads,
run-folder manifests and content hashes.

Outputs are written to a temporary file in the same folder and renamed into
place, so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from .errors import InputError, OutputError
from .layout import MANIFEST, ROOT_FILES
from .records import EvalSummary, Problem, StageManifest, from_dict, to_dict

T = TypeVar("T")

log = logging.getLogger(__name__)


def _as_dict(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else to_dict(record)


BOM = b"\xef\xbb\xbf"


def ensure_dir(path: str | Path) -> Path:
    """Create folder ``path`` (and parents); a file in the way is an :class:`OutputError` naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise OutputError(f"{blocker} exists and is not a folder; choose another output folder "
                          "(--out) or move that file away") from None
    except OSError as e:
        raise write_error(path, e) from None
    return path


def write_error(path: str | Path, e: OSError) -> OSError:
    """An :class:`OutputError` naming ``path`` for the write failures a user can fix (disk full,
    permissions, read-only file system); other ``OSError``s come back unchanged."""
    hints = {errno.ENOSPC: "no space left on device; free some space and run the same command again "
                           "(finished records are kept and resume)",
             errno.EDQUOT: "disk quota exceeded; free some space and run the same command again",
             errno.EACCES: "permission denied; choose a folder you can write to",
             errno.EPERM: "permission denied; choose a folder you can write to",
             errno.EROFS: "read-only file system; choose a writable output folder"}
    if e.errno not in hints:
        return e
    err = OutputError(f"{path}: cannot write: {hints[e.errno]}")
    err.errno = e.errno
    return err


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside ``path``; on clean exit fsync and rename it into place.

    On any failure (disk full included) the temp file is removed and ``path`` keeps its old
    content, so a finished output is never replaced by a partial one."""
    path = Path(path)
    ensure_dir(path.parent)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; cannot write a file there (move it away or choose "
                          "another output folder)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and (wrapped := write_error(path, e)) is not e:
            raise wrapped from e
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


def check_file(path: str | Path) -> Path:
    """``path`` as a readable file, else an :class:`InputError` saying what is there instead."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(f.name for f in path.iterdir() if f.suffix in (".jsonl", ".json") and f.is_file())
        hint = f"; it holds {', '.join(inside[:6])}" if inside else ""
        raise InputError(f"is a folder, expected a file{hint}", file=path)
    if not path.exists():
        raise InputError("file not found", file=path)
    return path


def _undecodable(path: Path, lineno: int, raw: bytes, e: UnicodeDecodeError) -> InputError:
    return InputError(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}: {e.reason}); "
                      "save the file as UTF-8", file=path, line=lineno)


def read_text(path: str | Path) -> str:
    """A whole UTF-8 file (an optional BOM is dropped); a bad byte is reported at its line."""
    path = check_file(path)
    data = path.read_bytes()
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        pos = start + e.start
        line_start = data.rfind(b"\n", 0, pos) + 1
        line_end = data.find(b"\n", pos)
        raw = data[line_start: None if line_end < 0 else line_end]
        e.start = pos - line_start
        raise _undecodable(path, data.count(b"\n", 0, pos) + 1, raw, e) from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for each line of a UTF-8 file, line endings kept.

    Decoding line by line (rather than in the 8 KB chunks of a text-mode file) lets a bad byte
    be reported at its own line, and a leading BOM (what spreadsheet tools write) is dropped."""
    path = check_file(path)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _undecodable(path, lineno, raw, e) from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", file=path, line=e.lineno) from None


def iter_jsonl(path: str | Path, *, allow_empty: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)``; raise :class:`InputError` naming the bad line."""
    path = check_file(path)
    seen = False
    for lineno, line in iter_lines(path):
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


_JSON_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "an object", list: "a list", tuple: "a list"}


@functools.lru_cache(maxsize=None)
def _field_kinds(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``(field, the origin types its annotation allows)`` per field of ``cls``, worked out once per
    class (``get_type_hints`` per record cost more than parsing the record)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        out.append((f.name, tuple(typing.get_origin(o) or o for o in options)))
    return tuple(out)


def _wrong_type(cls: type, obj: dict[str, Any]) -> tuple[str, str] | None:
    """``(field, expected)`` for the first field of ``obj`` whose JSON type cannot be ``cls``'s
    annotation (container and scalar kinds only), so a bad record fails here, at its line,
    rather than deep inside a later stage."""
    for name, kinds in _field_kinds(cls):
        if name not in obj:
            continue
        value = obj[name]
        if value is None and type(None) in kinds:
            continue
        if isinstance(value, bool):
            ok = bool in kinds
        else:
            ok = any(isinstance(value, k) or (k is float and isinstance(value, int)) or
                     (k is tuple and isinstance(value, list)) for k in kinds if k in _JSON_TYPES)
            ok = ok or not any(k in _JSON_TYPES for k in kinds)  # a type we do not check
        if not ok:
            expected = " or ".join(_JSON_TYPES.get(k, "null") for k in kinds)
            return name, expected
    return None


# record types whose field must be unique within a file: a repeated problem id would otherwise
# surface stages later (16 traces with 15 ids), far from the line that caused it
UNIQUE_FIELDS: dict[type, str] = {Problem: "id"}


def read_records(path: str | Path, cls: type[T], *, allow_empty: bool = False) -> list[T]:
    """Read a JSONL file of ``cls`` records, naming file/line/field on a bad row (a repeated
    :data:`UNIQUE_FIELDS` value included)."""
    out: list[T] = []
    unique, seen = UNIQUE_FIELDS.get(cls), {}
    for lineno, obj in iter_jsonl(path, allow_empty=allow_empty):
        if unique is not None and isinstance(key := obj.get(unique), str):
            if key in seen:
                raise InputError(f"duplicate {unique} {key!r} (first at line {seen[key]}); {unique}s must be "
                                 "unique", file=path, line=lineno, field=unique)
            seen[key] = lineno
        if (bad := _wrong_type(cls, obj)) is not None:
            name, expected = bad
            raise InputError(f"not a valid {cls.__name__} record: expected {expected}, got "
                             f"{json.dumps(obj[name], ensure_ascii=False)[:60]}", file=path, line=lineno,
                             field=name)
        try:
            out.append(from_dict(cls, obj))
        except TypeError as e:
            # dataclass __init__ says e.g. "missing 1 required positional argument: 'answer'"
            msg = str(e)
            field = msg.rsplit("'", 2)[-2] if msg.count("'") >= 2 else None
            raise InputError(f"not a valid {cls.__name__} record ({msg})", file=path, line=lineno,
                             field=field) from None
    return out


def read_summary(path: str | Path) -> EvalSummary:
    """An evaluation's ``summary.json`` (written by ``write_json(path, summary.to_json())``)."""
    if not isinstance(data := read_json(path), dict) or "accuracy" not in data:
        raise InputError("not an evaluation summary (no 'accuracy')", file=path)
    return EvalSummary.from_json(data)


def read_manifest(path: str | Path, stage: str = "") -> StageManifest | None:
    """A finished stage's manifest (``None`` when it has none)."""
    return StageManifest.of(read_json(path), stage) if Path(path).is_file() else None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_key(path: str | Path, base: str | Path | None = None, root: str | Path | None = None) -> str:
    """How a manifest names ``path``: relative to ``base`` (the stage folder, ``../problems/train.jsonl``)
    when it lies inside the run folder ``root`` (default: :func:`run_root` of ``base``, else the folder
    above ``base``), so a run folder that is moved, copied or addressed from another working
    directory keeps its names; a file outside (a user's data, a prompt template) by its absolute path.
    Without ``base``, the path as given."""
    if base is None:
        return str(path)
    base = os.path.abspath(base)
    root = os.path.abspath(root if root is not None else run_root(base) or os.path.dirname(base))
    path = os.path.abspath(path)
    inside = os.path.relpath(path, root)
    if inside == ".." or inside.startswith("../"):
        return Path(path).as_posix()
    return Path(os.path.relpath(path, base)).as_posix()


def hash_inputs(paths: Iterable[str | Path], base: str | Path | None = None) -> dict[str, str]:
    """``{name: sha256}`` of every file of ``paths`` in the order given (a folder: its files in name
    order, dot files left out), named by :func:`file_key` relative to ``base``."""
    root = None if base is None else run_root(base) or Path(os.path.abspath(base)).parent
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            out[file_key(p, base, root)] = sha256_file(p)
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    out[file_key(f, base, root)] = sha256_file(f)
    return out


def same_files(recorded: Any, current: dict[str, str]) -> bool:
    """Whether a manifest's ``recorded`` hashes name the same files as ``current``: in the same order,
    each with the same file name and sha256. Only the last part of a name counts, so a manifest that
    named its files relative to another folder or working directory (one written before names were
    relative to the stage folder, or one in a run folder since moved) is recognised by its contents."""
    if not isinstance(recorded, dict):
        return False
    def signature(hashes: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(PurePosixPath(str(k).replace("\\", "/")).name, v) for k, v in hashes.items()]
    return signature(recorded) == signature(current)


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


def peak_rss_mb() -> float:
    """Peak resident memory so far of this process and its finished children, in MB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def write_manifest(out_dir: str | Path, *, stage: str, config: Any, inputs: dict[str, str],
                   outputs: dict[str, Any], started: float, extra: dict[str, Any] | None = None) -> dict:
    """Record what produced this stage's outputs. Written last: its presence marks the stage done.

    ``inputs`` (from :func:`hash_inputs`) and ``output_hashes`` name files relative to ``out_dir``,
    so nothing in the manifest depends on where the run folder is or how it was addressed."""
    out_dir = Path(out_dir)
    manifest = {
        "stage": stage,
        "config": config,
        "config_hash": config_hash(config, out_dir),
        "inputs": inputs,
        "outputs": outputs,
        "output_hashes": output_hashes(out_dir, outputs),
        "versions": library_versions(),
        "peak_rss_mb": peak_rss_mb(),  # of the process so far: the report's run_cost takes the max
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 3),
    }
    if "torch" in sys.modules:  # a stage that computed records the machine; others stay torch-free
        from . import device
        manifest["device"] = device.detect().to_dict()
    if extra:
        manifest.update(extra)
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def output_hashes(out_dir: str | Path, outputs: dict[str, Any]) -> dict[str, str]:
    """The hashes of the files ``outputs["files"]`` names, inside ``out_dir`` (the stage folder)."""
    return hash_inputs((Path(out_dir) / name for name in outputs.get("files") or []), out_dir)


def run_root(out_dir: str | Path) -> Path | None:
    """The run folder a stage folder belongs to: the nearest folder at or above ``out_dir`` holding
    a run's ``recipe.yaml`` (``None`` for a stage run alone, outside any run folder)."""
    out_dir = Path(os.path.abspath(out_dir))
    return next((d for d in (out_dir, *out_dir.parents) if (d / ROOT_FILES["recipe_file"]).is_file()), None)


def _within_run(config: Any, root: Path | None) -> Any:
    """``config`` with every string naming an existing path inside the run folder ``root`` (a loop
    round's or a compare entry's starting checkpoint) written as ``{run}/<path relative to root>``,
    so the config means the same wherever the run folder is and however it was addressed."""
    if root is None:
        return config
    if isinstance(config, dict):
        return {k: _within_run(v, root) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_within_run(v, root) for v in config]
    if isinstance(config, str) and "/" in config and "\n" not in config and len(config) < 4096 \
            and os.path.exists(config):
        rel = os.path.relpath(os.path.abspath(config), root)
        if rel != ".." and not rel.startswith("../"):
            return "{run}/" + Path(rel).as_posix()
    return config


def config_hash(config: Any, out_dir: str | Path) -> str:
    """The hash a stage's config is recognised by: of ``config`` with the paths inside the run
    folder made relative to it (:func:`_within_run`)."""
    return sha256_json(_within_run(config, run_root(out_dir)))


# model identities as recorded before they came from content: {current: earlier} (see models.resolve)
_EARLIER_IDENTITIES: dict[str, str] = {}


def earlier_identity(current: str, earlier: str) -> None:
    """Note that manifests written before may name the model ``current`` as ``earlier``, so a
    finished stage keyed on ``earlier`` is still recognised (and its manifest rewritten)."""
    if current != earlier:
        _EARLIER_IDENTITIES[current] = earlier


# options a stage's config gained after runs were made with it: {dotted name: the value that keeps
# the earlier behaviour} (see later_field)
_LATER_FIELDS: dict[str, Any] = {}


def later_field(name: str, neutral: Any) -> None:
    """Declare that config option ``name`` (a dotted path, matched at the end of a key path, e.g.
    ``teachers.share``) was added after runs were made without it, and that ``neutral`` behaves as
    before: a manifest from before, whose config lacks it, is the same stage while it holds ``neutral``.
    (Changing a default is not such a case: that changes the stage.)"""
    _LATER_FIELDS[name] = neutral


# input files a stage's identity gained after runs were made without them (see later_input)
_LATER_INPUTS: set[Path] = set()


def later_input(paths: Iterable[str | Path]) -> None:
    """Declare files that joined a stage's hashed inputs after runs were made without them (a warm
    start's weights): a manifest that lacks them is the same stage while each is older than it,
    i.e. it has not been rewritten since that stage finished."""
    _LATER_INPUTS.update(Path(os.path.abspath(p)) for p in paths)


def _without_later_inputs(current: dict[str, str], out_dir: Path, written_at: float) -> dict[str, str] | None:
    """``current`` without the later inputs (:func:`later_input`) not modified since ``written_at``;
    ``None`` when it has none of them."""
    root = run_root(out_dir) or Path(os.path.abspath(out_dir)).parent
    older = {file_key(p, out_dir, root) for p in _LATER_INPUTS if p.is_file() and p.stat().st_mtime <= written_at}
    kept = {k: v for k, v in current.items() if k not in older}
    return kept if len(kept) < len(current) else None


def _without_later(obj: Any, path: tuple[str, ...] = ()) -> Any:
    """``obj`` without the later fields that hold their neutral value (see :func:`later_field`)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = (*path, str(k))
            dotted = ".".join(key)
            if any((dotted == n or dotted.endswith("." + n)) and v == neutral for n, neutral in _LATER_FIELDS.items()):
                continue
            out[k] = _without_later(v, key)
        return out
    if isinstance(obj, list):
        return [_without_later(v, path) for v in obj]
    return obj


def _config_matches(recorded: Any, config: Any, out_dir: Path) -> bool:
    """``recorded`` is the hash of ``config`` (:func:`config_hash`, or of ``config`` as given, as
    manifests recorded it before), or of either with the model identities as they were spelled
    before (:func:`earlier_identity`), or of either without the options added since
    (:func:`later_field`)."""
    within = _within_run(config, run_root(out_dir))
    for form in (within, config, _without_later(within), _without_later(config)):
        text = json.dumps(form, sort_keys=True, default=str)
        if recorded == hashlib.sha256(text.encode()).hexdigest():
            return True
        spelled = text
        for current, earlier in _EARLIER_IDENTITIES.items():
            spelled = spelled.replace(current, earlier)
        if spelled != text and recorded == hashlib.sha256(spelled.encode()).hexdigest():
            return True
    return False


def completed_manifest(out_dir: str | Path, config: Any, inputs: dict[str, str]) -> dict | None:
    """The manifest of a finished stage whose config and inputs match, else ``None``.

    Inputs match by content (:func:`same_files`) and outputs are checked against the files in
    ``out_dir`` itself, so a moved or copied run folder is reused (and validated against its own
    files, not the ones it was copied from). A manifest recognised only through its older form
    (paths as typed, an earlier model identity) is rewritten in the current form."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(m, dict) or not _config_matches(m.get("config_hash"), config, out_dir):
        return None
    if not same_files(m.get("inputs"), inputs):
        before = _without_later_inputs(inputs, out_dir, path.stat().st_mtime)
        if before is None or not same_files(m.get("inputs"), before):
            return None
    if (m.get("outputs") or {}).get("n_errors"):  # some outputs failed (a teacher request): retry those
        return None
    outputs = output_hashes(out_dir, m.get("outputs") or {})
    if not same_files(m.get("output_hashes") or {}, outputs):
        return None
    changed = {k: v for k, v in (("inputs", inputs), ("output_hashes", outputs)) if m.get(k) != v}
    if m.get("config_hash") != (current := config_hash(config, out_dir)):
        changed.update(config=config, config_hash=current)
    if changed:
        m.update(changed)
        try:  # a read-only run folder is still reused; it is only not migrated
            write_json(path, m)
            log.info("%s: recognised by content; rewrote it in the current form (files named relative to "
                     "its folder, content identities)", path)
        except (OSError, OutputError) as e:
            log.debug("%s: cannot rewrite the manifest (%s)", path, e)
    return m


def cached_stage(out_dir: str | Path, *, stage: str, config: Any, inputs: Iterable[str | Path],
                 body: Callable[[], dict[str, Any]], extra: dict[str, Any] | None = None) -> dict:
    """The skip-if-finished / run / write-manifest step every stage shares.

    When ``out_dir`` holds a manifest for the same ``config`` and input contents whose outputs
    are intact, that manifest is returned with ``this_run = {"skipped": True}`` and ``body``
    never runs (no model is loaded), unless its ``outputs`` count ``n_errors`` (failed teacher
    requests, which the sample cache does not keep): then it runs again. Otherwise ``body()``
    writes the outputs and returns the manifest's ``outputs`` (``files`` lists the ones to
    hash); the manifest is written last, so an interrupted stage is never taken for a finished one.
    """
    hashes = hash_inputs(inputs, out_dir)
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


def json_safe(obj: Any) -> Any:
    """Turn tuples/sets/numpy scalars into JSON types so entries survive a JSONL round trip."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        items = [json_safe(v) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return json_safe(obj.item())
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist") and callable(obj.tolist):  # arrays
        return json_safe(obj.tolist())
    return str(obj)
