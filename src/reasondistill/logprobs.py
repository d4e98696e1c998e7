"""Compact on-disk store of a teacher's per-token top-k logprobs, for offline KD.

``traces.jsonl`` keeps logprobs as JSON (``[[id, logprob], ...]`` per token), roughly
1 KB per token at k=20. Offline distillation reads them once per epoch, so they go
into one fixed-size binary record per generated token instead::

    <store>/
      index.json          {format, version, k, id_dtype, record_bytes, n_tokens, shard,
                           traces: {trace_id: [first_token, n_tokens]}}
      logprobs-00000.bin  n_tokens packed records:
                          token id | k top ids | k top logprobs (fp16) | tail logprob (fp16)

With int32 ids a record is ``4 + 8k + 2`` bytes (126 B at k=20); pass ``vocab_size``
<= 65536 and ids are uint16 (``4k + 4``, 84 B at k=20). The tail is the probability
mass the top k leave out, ``log(1 - sum(exp(top)))`` computed in float64 before the
logprobs are rounded to fp16; ``-inf`` when the top k cover everything.

Writes are atomic: the shard is written to a temp file and renamed, and ``index.json``
is written last, so a store without an index is an unfinished one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import io
from .errors import InputError

FORMAT = "reasondistill-logprobs"
VERSION = 1
INDEX = "index.json"
SHARD = "logprobs-00000.bin"
DEFAULT_K = 20


def record_dtype(k: int, id_dtype: str) -> np.dtype:
    """One token's packed record (no alignment padding)."""
    ids = np.dtype(id_dtype).newbyteorder("<")
    return np.dtype([("token", ids), ("ids", ids, (k,)), ("logprobs", "<f2", (k,)), ("tail", "<f2")])


def tail_from_topk(topk_logprobs: np.ndarray) -> np.ndarray:
    """``log(1 - sum(exp(topk)))`` per row, in float64; ``-inf`` where the top k hold all the mass."""
    lp = np.asarray(topk_logprobs, dtype=np.float64)
    if lp.shape[-1] == 0:
        return np.zeros(lp.shape[:-1])
    rest = 1.0 - np.exp(lp).sum(axis=-1)
    with np.errstate(divide="ignore"):
        return np.where(rest > 0, np.log(np.clip(rest, 1e-300, None)), -np.inf)


def from_completion_logprobs(logprobs: Sequence[dict[str, Any]], k: int = DEFAULT_K
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Convert ``Completion.logprobs`` (per token ``{"id", "logprob", "top": [[id, lp], ...]}``)
    into ``(token_ids[T], topk_ids[T, k], topk_logprobs[T, k], tail_logprob[T])``.

    Each token's ``top`` list is sorted by logprob and cut to ``k``; fewer than ``k``
    entries is an error (ask the teacher for ``top_logprobs >= k``).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = len(logprobs)
    token_ids = np.zeros(n, dtype=np.int64)
    topk_ids = np.zeros((n, k), dtype=np.int64)
    topk_lp = np.zeros((n, k), dtype=np.float64)
    for t, entry in enumerate(logprobs):
        if entry.get("id") is None:
            raise ValueError(f"token {t} has no token id (a teacher server that returns token strings only); "
                             "KD needs ids: with vLLM set teacher.options.token_ids=true")
        top = entry.get("top") or []
        if len(top) < k:
            raise ValueError(f"token {t} has {len(top)} top logprobs, fewer than k={k}; "
                             f"generate with top_logprobs >= {k}")
        top = sorted(top, key=lambda pair: -float(pair[1]))[:k]
        token_ids[t] = int(entry["id"])
        topk_ids[t] = [int(pair[0]) for pair in top]
        topk_lp[t] = [float(pair[1]) for pair in top]
    return token_ids, topk_ids, topk_lp.astype(np.float32), tail_from_topk(topk_lp).astype(np.float32)


class LogprobWriter:
    """Stream traces' top-k logprobs into a store folder; ``close()`` publishes it.

    Use as a context manager: leaving the block by an exception discards the
    half-written shard and leaves any earlier store at ``path`` untouched.
    """

    def __init__(self, path: str | Path, k: int = DEFAULT_K, *, vocab_size: int | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.path = Path(path)
        self.k = k
        self.id_dtype = "uint16" if vocab_size is not None and vocab_size <= 1 << 16 else "int32"
        self._max_id = np.iinfo(self.id_dtype).max
        self.dtype = record_dtype(k, self.id_dtype)
        self.path.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{SHARD}.", suffix=".tmp", dir=self.path)
        self._fh = os.fdopen(fd, "wb")
        self._index: dict[str, list[int]] = {}
        self._n = 0
        self.closed = False

    def add(self, trace_id: str, token_ids: Any, topk_ids: Any, topk_logprobs: Any,
            tail_logprob: Any | None = None) -> None:
        """Append one trace: ``token_ids[T]``, ``topk_ids[T, k]``, ``topk_logprobs[T, k]``
        (numpy, torch or lists); the tail is computed from the logprobs when not given."""
        if self.closed:
            raise ValueError("LogprobWriter is closed")
        if trace_id in self._index:
            raise ValueError(f"trace {trace_id!r} was already added to {self.path}")
        tokens = _numpy(token_ids).astype(np.int64).reshape(-1)
        ids = _numpy(topk_ids).astype(np.int64)
        lps = _numpy(topk_logprobs).astype(np.float64)
        n = len(tokens)
        if ids.shape != (n, self.k) or lps.shape != (n, self.k):
            raise ValueError(f"trace {trace_id!r}: expected topk_ids and topk_logprobs of shape ({n}, {self.k}), "
                             f"got {ids.shape} and {lps.shape}")
        tail = (_numpy(tail_logprob).astype(np.float64).reshape(-1) if tail_logprob is not None
                else tail_from_topk(lps))
        if tail.shape != (n,):
            raise ValueError(f"trace {trace_id!r}: expected tail_logprob of shape ({n},), got {tail.shape}")
        for name, arr in (("token_ids", tokens), ("topk_ids", ids)):
            if arr.size and (arr.min() < 0 or arr.max() > self._max_id):
                raise ValueError(f"trace {trace_id!r}: {name} out of range for {self.id_dtype} "
                                 f"(pass vocab_size only when every id is below it)")
        rec = np.empty(n, dtype=self.dtype)
        rec["token"], rec["ids"], rec["logprobs"], rec["tail"] = tokens, ids, lps, tail
        self._fh.write(rec.tobytes())
        self._index[trace_id] = [self._n, n]
        self._n += n

    def add_completion(self, trace_id: str, logprobs: Sequence[dict[str, Any]]) -> None:
        """Append one trace from ``Completion.logprobs`` / ``Trace.logprobs``."""
        self.add(trace_id, *from_completion_logprobs(logprobs, self.k))

    def close(self) -> Path:
        """Publish the shard, then the index. Returns the store folder."""
        if self.closed:
            return self.path
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        with contextlib.suppress(FileNotFoundError):  # an older store here is unfinished from now on
            (self.path / INDEX).unlink()
        os.replace(self._tmp, self.path / SHARD)
        io.write_json(self.path / INDEX, {
            "format": FORMAT, "version": VERSION, "k": self.k, "id_dtype": self.id_dtype,
            "record_bytes": self.dtype.itemsize, "n_tokens": self._n, "shard": SHARD, "traces": self._index})
        self.closed = True
        return self.path

    def abort(self) -> None:
        if not self.closed:
            self._fh.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self.closed = True

    def __enter__(self) -> LogprobWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class LogprobReader:
    """Random access to a finished store: ``get(trace_id)`` returns numpy arrays."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index_path = self.path / INDEX
        if not self.path.exists():
            raise InputError("logprob store not found (a folder such as a run's generate/logprobs, written "
                             "with generate.top_logprobs > 0)", file=self.path)
        if not self.path.is_dir():
            raise InputError("is a file; a logprob store is a folder (a run's generate/logprobs)", file=self.path)
        if not index_path.exists():
            raise InputError(f"no {INDEX}: not a finished logprob store (was the writer closed?)", file=self.path)
        meta = io.read_json(index_path)
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise InputError(f"not a {FORMAT} v{VERSION} index", file=index_path)
        self.k: int = int(meta["k"])
        self.id_dtype: str = meta["id_dtype"]
        self.dtype = record_dtype(self.k, self.id_dtype)
        self.n_tokens: int = int(meta["n_tokens"])
        self._index: dict[str, list[int]] = meta["traces"]
        self.shard = self.path / meta["shard"]
        size = self.shard.stat().st_size if self.shard.exists() else -1
        if size != self.n_tokens * self.dtype.itemsize:
            raise InputError(f"shard holds {size} bytes, the index expects {self.n_tokens} tokens x "
                             f"{self.dtype.itemsize} bytes", file=self.shard)
        self._data = (np.memmap(self.shard, dtype=self.dtype, mode="r", shape=(self.n_tokens,))
                      if self.n_tokens else np.empty(0, dtype=self.dtype))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, trace_id: object) -> bool:
        return trace_id in self._index

    def trace_ids(self) -> list[str]:
        return list(self._index)

    def n_tokens_of(self, trace_id: str) -> int:
        return self._locate(trace_id)[1]

    def _locate(self, trace_id: str) -> list[int]:
        try:
            return self._index[trace_id]
        except KeyError:
            raise KeyError(f"trace {trace_id!r} is not in the logprob store {self.path} "
                           f"({len(self._index)} traces)") from None

    def get(self, trace_id: str, k: int | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(token_ids[T] int64, topk_ids[T, k] int64, topk_logprobs[T, k] float32, tail_logprob[T] float32)``.

        ``k`` smaller than the stored k keeps the k most likely ids and folds the
        dropped ones into the tail.
        """
        start, n = self._locate(trace_id)
        rec = self._data[start:start + n]
        tokens = rec["token"].astype(np.int64)
        ids = rec["ids"].astype(np.int64).reshape(n, self.k)
        lps = rec["logprobs"].astype(np.float32).reshape(n, self.k)
        tail = rec["tail"].astype(np.float32)
        if k is not None and k != self.k:
            if not 1 <= k <= self.k:
                raise ValueError(f"k={k} is not in [1, {self.k}] (the store holds the top {self.k})")
            order = np.argsort(-lps, axis=-1, kind="stable")[:, :k]
            kept_ids = np.take_along_axis(ids, order, axis=-1)
            kept = np.take_along_axis(lps, order, axis=-1)
            dropped = np.exp(lps.astype(np.float64)).sum(-1) - np.exp(kept.astype(np.float64)).sum(-1)
            with np.errstate(divide="ignore"):
                tail = np.log(np.exp(tail.astype(np.float64)) + np.clip(dropped, 0, None)).astype(np.float32)
            ids, lps = kept_ids, kept
        return tokens, ids, lps, tail

    def bytes_per_token(self) -> float:
        """On-disk bytes (shard plus index) per stored token."""
        total = self.shard.stat().st_size + (self.path / INDEX).stat().st_size
        return total / max(self.n_tokens, 1)


def store_traces(traces: Iterable[Any], path: str | Path, k: int = DEFAULT_K, *,
                 vocab_size: int | None = None) -> dict[str, int]:
    """Write every trace that carries ``logprobs`` into a store at ``path``.

    Returns counts ``{"stored", "skipped"}`` (skipped: no logprobs).
    """
    stored = skipped = 0
    with LogprobWriter(path, k, vocab_size=vocab_size) as writer:
        for trace in traces:
            if not trace.logprobs:
                skipped += 1
                continue
            writer.add_completion(trace.id, trace.logprobs)
            stored += 1
    return {"stored": stored, "skipped": skipped}


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


__all__ = ["LogprobWriter", "LogprobReader", "from_completion_logprobs", "store_traces", "tail_from_topk",
           "DEFAULT_K"]
