"""Content-addressed sample cache: a killed run resumes and never pays twice.

Key = sha256(teacher identity, conversation, sampling parameters, sample index).
Storage is one append-only JSONL file per teacher identity; every finished batch is
appended and fsynced. A line cut short by SIGKILL is ignored on the next load. Writers
hold an exclusive lock and first read what other runs appended meanwhile, so two runs
sharing a cache neither interleave lines, nor truncate, nor write a key twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..io import write_error
from .base import Completion, Request, SamplingParams


def sample_key(identity: str, request: Request, sampling: SamplingParams) -> str:
    payload = {"teacher": identity, "messages": list(request.messages), "sampling": sampling.key(),
               "sample_idx": request.sample_idx}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def cache_identity(teacher_cfg: Any, backend_identity: str) -> str:
    """The sample-cache identity of a teacher: its backend's, plus its name when it is one of a
    teacher list, so two named teachers never share samples (even on one model) and reordering
    the list reuses every sample. The single ``teacher`` mapping keeps the backend's identity."""
    name = getattr(teacher_cfg, "name", "")
    return f"{backend_identity}#teacher={name}" if name else backend_identity


class SampleCache:
    def __init__(self, root: str | Path, identity: str) -> None:
        self.identity = identity
        name = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.path = Path(root) / f"{name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, dict[str, Any]] = {}
        self.corrupt_lines = 0
        self._load()

    def _load(self) -> None:
        self._offset = 0  # bytes of the file already read into _entries
        with self._locked(fcntl.LOCK_EX) as fh:  # create with its header once, even with racing runs
            if fh.seek(0, os.SEEK_END) == 0:
                fh.write((json.dumps({"identity": self.identity}) + "\n").encode())
                fh.flush()
            self._read_new()

    @contextlib.contextmanager
    def _locked(self, how: int):
        with self.path.open("a+b") as fh:
            fcntl.flock(fh, how)
            try:
                yield fh
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_new(self) -> None:
        """Read lines appended since the last read; call under a lock, so no write is in progress
        and a line without its newline is one cut short by a kill (the sample is redone)."""
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        self._offset += len(data)
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.corrupt_lines += 1
                continue
            if isinstance(obj, dict) and "key" in obj:
                self._entries[obj["key"]] = obj["completion"]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Completion | None:
        data = self._entries.get(key)
        if data is None and self.path.stat().st_size > self._offset:  # another run appended
            with self._locked(fcntl.LOCK_SH):
                self._read_new()
            data = self._entries.get(key)
        return None if data is None else Completion(**data)

    def put_many(self, items: list[tuple[str, Completion]]) -> None:
        """Append finished samples durably (flush + fsync) under an exclusive lock, skipping keys
        another run wrote meanwhile. A failed write (disk full) names the cache file."""
        if not items:
            return
        try:
            with self._locked(fcntl.LOCK_EX) as fh:
                self._read_new()
                lines = []
                for key, comp in items:
                    if key in self._entries:
                        continue
                    data = {"text": comp.text, "finish_reason": comp.finish_reason,
                            "prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens,
                            "logprobs": comp.logprobs, "meta": comp.meta}
                    self._entries[key] = data
                    lines.append(json.dumps({"key": key, "completion": data}, ensure_ascii=False))
                if not lines:
                    return
                end = fh.seek(0, os.SEEK_END)
                fh.seek(max(end - 1, 0))
                # a previous writer killed mid-line left no newline: start on a fresh line
                prefix = "\n" if end > 0 and fh.read(1) != b"\n" else ""
                fh.write((prefix + "\n".join(lines) + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
                self._offset = fh.tell()
        except OSError as e:
            if (wrapped := write_error(self.path, e)) is e:
                raise
            raise wrapped from e
