"""Drawing samples from a teacher through the cache, in deterministic batches.

Batches are cut from the full, ordered request list and each finished batch is
appended to the cache as soon as it returns, so a resumed run meets whole cached
batches and then the same uncached batches (seeded per batch, hence the same
samples) as an uninterrupted run. Only uncached requests reach the backend, through
its async ``acomplete``, with up to ``max_concurrency`` batches in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tqdm.auto import tqdm

from .base import Completion, Request, SamplingParams, Backend
from .cache import SampleCache, sample_key


@dataclass(slots=True)
class CallCounts:
    made: int = 0  # samples the teacher actually generated in this invocation
    cached: int = 0  # samples served from the cache

    def add(self, other: CallCounts) -> None:
        self.made += other.made
        self.cached += other.cached


def draw(teacher: Backend, requests: Sequence[Request], sampling: SamplingParams,
         cache: SampleCache | None = None, *, desc: str = "generate") -> tuple[list[Completion], CallCounts]:
    """One completion per request, in order: cached ones from ``cache``, the rest from the
    backend through ``acomplete``, up to ``teacher.max_concurrency`` batches in flight. Each
    finished batch is appended to the cache at once, so an interruption loses at most the
    batches in flight."""
    coro = _draw(teacher, requests, sampling, cache, desc)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:  # called from inside an event loop (a notebook): run beside it
        return pool.submit(asyncio.run, coro).result()


async def _draw(teacher: Backend, requests: Sequence[Request], sampling: SamplingParams,
                cache: SampleCache | None, desc: str) -> tuple[list[Completion], CallCounts]:
    counts = CallCounts()
    results: list[Completion | None] = [None] * len(requests)
    keys = [sample_key(teacher.identity, r, sampling) for r in requests] if cache is not None else []
    size = max(1, teacher.batch_size)
    gate = asyncio.Semaphore(max(1, teacher.max_concurrency))

    async def one_batch(idx: list[int], bar: tqdm) -> None:
        hits = {i: cache.get(keys[i]) for i in idx} if cache is not None else {}
        missing = [i for i in idx if hits.get(i) is None]
        for i in idx:
            if hits.get(i) is not None:
                results[i] = hits[i]
        counts.cached += len(idx) - len(missing)
        if missing:
            async with gate:
                batch = await teacher.acomplete([requests[i] for i in missing], sampling)
            if len(batch) != len(missing):
                raise RuntimeError(f"backend {teacher.name} returned {len(batch)} completions "
                                   f"for {len(missing)} requests")
            counts.made += len(missing)
            for i, comp in zip(missing, batch):
                results[i] = comp
            if cache is not None:  # errors are not cached: they are retried next run
                cache.put_many([(keys[i], c) for i, c in zip(missing, batch) if c.finish_reason != "error"])
        bar.update(len(idx))

    batches = [list(range(start, min(start + size, len(requests)))) for start in range(0, len(requests), size)]
    with tqdm(total=len(requests), desc=desc, unit="sample", disable=None, dynamic_ncols=True) as bar:
        tasks = [asyncio.create_task(one_batch(idx, bar)) for idx in batches]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
    return [r for r in results if r is not None], counts
