"""Drawing samples from a teacher through the cache, in deterministic batches.

Batches are cut from the full, ordered request list and each finished batch is
appended to the cache before the next starts, so a resumed run meets whole cached
batches and then the same uncached batches (seeded per batch, hence the same
samples) as an uninterrupted run. Only uncached requests reach the teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from .base import Completion, Request, SamplingParams, Teacher
from .cache import SampleCache, sample_key


@dataclass(slots=True)
class CallCounts:
    made: int = 0  # samples the teacher actually generated in this invocation
    cached: int = 0  # samples served from the cache

    def add(self, other: CallCounts) -> None:
        self.made += other.made
        self.cached += other.cached


def draw(teacher: Teacher, requests: Sequence[Request], sampling: SamplingParams,
         cache: SampleCache | None = None, *, desc: str = "generate") -> tuple[list[Completion], CallCounts]:
    counts = CallCounts()
    results: list[Completion | None] = [None] * len(requests)
    keys = [sample_key(teacher.identity, r, sampling) for r in requests] if cache is not None else []
    size = max(1, teacher.batch_size)
    with tqdm(total=len(requests), desc=desc, unit="sample", disable=None, dynamic_ncols=True) as bar:
        for start in range(0, len(requests), size):
            idx = list(range(start, min(start + size, len(requests))))
            hits = {i: cache.get(keys[i]) for i in idx} if cache is not None else {}
            missing = [i for i in idx if hits.get(i) is None]
            for i in idx:
                if hits.get(i) is not None:
                    results[i] = hits[i]
            counts.cached += len(idx) - len(missing)
            if missing:
                batch = teacher.complete([requests[i] for i in missing], sampling)
                if len(batch) != len(missing):
                    raise RuntimeError(f"teacher {teacher.name} returned {len(batch)} completions "
                                       f"for {len(missing)} requests")
                counts.made += len(missing)
                for i, comp in zip(missing, batch):
                    results[i] = comp
                if cache is not None:  # errors are not cached: they are retried next run
                    cache.put_many([(keys[i], c) for i, c in zip(missing, batch) if c.finish_reason != "error"])
            bar.update(len(idx))
    return [r for r in results if r is not None], counts
