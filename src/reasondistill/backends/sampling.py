"""Drawing samples from a teacher through the cache, in deterministic batches.

Batches are cut from the full, ordered request list and each finished batch is
appended to the cache as soon as it returns, so a resumed run meets whole cached
batches and then the same uncached batches (seeded per batch, hence the same
samples) as an uninterrupted run. Only uncached requests reach the backend, through
its async ``acomplete``, with up to ``max_concurrency`` batches in flight.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from .base import Completion, Request, SamplingParams, Backend, run_blocking
from .cache import SampleCache, sample_key

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CallCounts:
    made: int = 0  # samples the teacher actually generated in this invocation
    cached: int = 0  # samples served from the cache

    def add(self, other: CallCounts) -> None:
        self.made += other.made
        self.cached += other.cached


def failure_summary(errors: Sequence[str], total: int, what: str = "teacher requests") -> str:
    """``"15 of 80 teacher requests failed: <the most common cause> (12 times; 1 other cause)"``:
    how many rows failed and why, in one line (each cause names the URL or option, see the backend)."""
    causes = Counter(e or "no reason given" for e in errors)
    (top, n), rest = causes.most_common(1)[0], len(causes) - 1
    more = f"; {rest} other cause{'s' if rest > 1 else ''}" if rest else ""
    return f"{len(errors)} of {total} {what} failed: {top} ({n} time{'s' if n > 1 else ''}{more})"


def over_context(meta: dict[str, Any]) -> bool:
    """Whether a completion's prompt did not fit the model's context (``context_overflow`` in its meta)."""
    return bool(meta.get("context_overflow"))


class _Draw:
    """The bookkeeping of one draw: cache lookups per batch, and each batch's results written
    back (and appended to the cache) as soon as it returns."""

    def __init__(self, teacher: Backend, requests: Sequence[Request], sampling: SamplingParams,
                 cache: SampleCache | None, identity: str | None = None) -> None:
        self.teacher, self.requests, self.sampling, self.cache = teacher, requests, sampling, cache
        self.counts = CallCounts()
        self.results: list[Completion | None] = [None] * len(requests)
        key_id = identity or teacher.identity
        self.keys = [sample_key(key_id, r, sampling) for r in requests] if cache is not None else []
        size = max(1, teacher.batch_size)
        order = by_length(teacher, requests) if sampling.temperature <= 0 else list(range(len(requests)))
        self.batches = [order[s:s + size] for s in range(0, len(requests), size)]

    def missing(self, idx: list[int]) -> list[int]:
        """Fill ``idx``'s cached results; the indices the backend still has to answer."""
        out = []
        for i in idx:
            hit = self.cache.get(self.keys[i]) if self.cache is not None else None
            if hit is None:
                out.append(i)
            else:
                self.results[i] = hit
        self.counts.cached += len(idx) - len(out)
        return out

    def done(self, missing: list[int], batch: list[Completion]) -> None:
        if len(batch) != len(missing):
            raise RuntimeError(f"backend {self.teacher.name} returned {len(batch)} completions "
                               f"for {len(missing)} requests")
        self.counts.made += len(missing)
        for i, comp in zip(missing, batch):
            self.results[i] = comp
        if self.cache is not None:  # errors are not cached: they are retried next run
            self.cache.put_many([(self.keys[i], c) for i, c in zip(missing, batch) if c.finish_reason != "error"])

    def outcome(self) -> tuple[list[Completion], CallCounts]:
        return [r for r in self.results if r is not None], self.counts


def by_length(teacher: Backend, requests: Sequence[Request]) -> list[int]:
    """Request indices ordered by prompt length (ties in input order), so each batch pads little;
    input order where the backend cannot say (``prompt_length`` None). Greedy draws only: a sampled
    batch is seeded from its content, so regrouping would change its samples. The order depends on
    the requests alone, so a resumed draw cuts the same batches."""
    lengths = [teacher.prompt_length(r) for r in requests]
    if any(n is None for n in lengths):
        return list(range(len(requests)))
    return sorted(range(len(requests)), key=lambda i: lengths[i])


class _LogProgress:
    """Progress for a log file or CI console (no terminal, so no tqdm bar): a line at most every
    ``every_s`` seconds and one at the end, so a long evaluation never looks hung."""

    def __init__(self, total: int, desc: str, every_s: float = 15.0) -> None:
        self.total, self.desc, self.every_s, self.n = total, desc, every_s, 0
        self.started = self.last = time.monotonic()

    def update(self, n: int) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.n >= self.total:
            self.last = now
            rate = self.n / max(now - self.started, 1e-9)
            log.info("%s: %d/%d samples, %.0f s, %.1f samples/s", self.desc, self.n, self.total,
                     now - self.started, rate)

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress(total: int, desc: str) -> Any:
    """A tqdm bar on a terminal, timed log lines elsewhere."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit="sample", dynamic_ncols=True)
    return _LogProgress(total, desc)


def in_process(teacher: Backend) -> bool:
    """A backend that computes in this process, one batch at a time: nothing to overlap."""
    return type(teacher).acomplete is Backend.acomplete and teacher.max_concurrency <= 1


def draw(teacher: Backend, requests: Sequence[Request], sampling: SamplingParams,
         cache: SampleCache | None = None, *, desc: str = "generate",
         identity: str | None = None) -> tuple[list[Completion], CallCounts]:
    """One completion per request, in order: cached ones from ``cache``, the rest from the
    backend. Backends with real concurrency are awaited through ``acomplete`` with up to
    ``max_concurrency`` batches in flight; in-process engines run batch after batch on this
    thread (Ctrl-C and SIGTERM then stop them at once). Greedy batches group prompts of similar
    length (:func:`by_length`); results come back in input order all the same. Each finished batch is appended to the
    cache at once, so an interruption loses at most the batches in flight. ``identity`` (default
    the backend's) goes into the cache keys: a named teacher's own (``generate.cache_identity``)."""
    state = _Draw(teacher, requests, sampling, cache, identity)
    with progress(len(requests), desc) as bar:
        if in_process(teacher):
            for idx in state.batches:
                if missing := state.missing(idx):
                    state.done(missing, teacher.complete([requests[i] for i in missing], sampling))
                bar.update(len(idx))
            return state.outcome()
        return run_blocking(_overlapped(state, bar))


async def _overlapped(state: _Draw, bar: Any) -> tuple[list[Completion], CallCounts]:
    gate = asyncio.Semaphore(max(1, state.teacher.max_concurrency))

    async def one_batch(idx: list[int]) -> None:
        if missing := state.missing(idx):
            async with gate:
                batch = await state.teacher.acomplete([state.requests[i] for i in missing], state.sampling)
            state.done(missing, batch)
        bar.update(len(idx))

    tasks = [asyncio.create_task(one_batch(idx)) for idx in state.batches]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    return state.outcome()
