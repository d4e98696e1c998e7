"""Content-addressed sample cache: a killed run resumes and never pays twice.

Key = sha256(teacher identity, conversation, sampling parameters, sample index).
Storage is one append-only JSONL file per teacher identity; every finished batch is
appended and fsynced. A line cut short by SIGKILL is ignored on the next load, and
an exclusive lock keeps concurrent writers from interleaving lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .base import Completion, Request, SamplingParams


def sample_key(identity: str, request: Request, sampling: SamplingParams) -> str:
    payload = {"teacher": identity, "messages": list(request.messages), "sampling": sampling.key(),
               "sample_idx": request.sample_idx}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
        if not self.path.exists():
            self.path.write_text(json.dumps({"identity": self.identity}) + "\n", encoding="utf-8")
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    self.corrupt_lines += 1  # a write cut short by a kill; the sample is redone
                    continue
                if isinstance(obj, dict) and "key" in obj:
                    self._entries[obj["key"]] = obj["completion"]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Completion | None:
        data = self._entries.get(key)
        return None if data is None else Completion(**data)

    def put_many(self, items: list[tuple[str, Completion]]) -> None:
        """Append finished samples durably (flush + fsync) under an exclusive lock."""
        if not items:
            return
        lines = []
        for key, comp in items:
            data = {"text": comp.text, "finish_reason": comp.finish_reason, "prompt_tokens": comp.prompt_tokens,
                    "completion_tokens": comp.completion_tokens, "logprobs": comp.logprobs, "meta": comp.meta}
            self._entries[key] = data
            lines.append(json.dumps({"key": key, "completion": data}, ensure_ascii=False))
        with self.path.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                # a previous writer killed mid-line left no newline: start on a fresh line
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    with open(self.path, "rb") as rb:
                        rb.seek(-1, os.SEEK_END)
                        if rb.read(1) != b"\n":
                            fh.write("\n")
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fh, fcntl.LOCK_UN)
