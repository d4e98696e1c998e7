"""``generate.executor: ray``: the teacher as N backend replicas on a Ray cluster.

:class:`RayReplicas` is itself a :class:`~reasondistill.backends.base.Backend`, so the
sampling loop (``sampling.draw``) runs unchanged on the driver: it cuts the same batches,
looks them up in the same sample cache, sends only the uncached ones out, and appends each
returned batch to the cache and the traces itself. A Ray run and a local run therefore
write the same files under the same cache keys, and either one resumes the other.

Each replica is a Ray actor holding one backend built from ``teacher`` (an HTTP client for
``openai``, a model for ``transformers`` on a GPU node). A replica process that dies is
restarted by Ray and its unfinished batches are submitted again (``max_retries``); as only
the driver writes, a retried batch cannot put a sample in twice.

vLLM on GPU nodes: ``teacher.backend: vllm`` (or an ``openai`` teacher pointed at vLLM
servers) runs one engine per replica here. Ray Data's ``ray.data.llm`` processors batch a
whole dataset through vLLM engines or HTTP endpoints as a streaming pipeline instead; they
own their own retries and output rows, so a run through them would bypass the sample
cache. This module keeps the cache as the single source of truth and uses plain actors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from .base import Backend, Completion, Request, SamplingParams

log = logging.getLogger(__name__)

#: the Ray release this module is tested against (the `ray` extra pins it)
RAY_VERSION = "2.60.0"


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"generate.executor: ray needs Ray: pip install 'reasondistill[ray]' "
                          f"(ray=={RAY_VERSION})") from e
    return ray


class Replica:
    """What runs inside one Ray actor: a backend built from the teacher config, kept for the run."""

    def __init__(self, teacher_cfg: Any) -> None:
        from . import build_teacher

        self.backend = build_teacher(teacher_cfg)

    def describe(self) -> dict[str, Any]:
        b = self.backend
        return {"name": b.name, "identity": b.identity, "batch_size": b.batch_size, "vocab_size": b.vocab_size}

    def pid(self) -> int:
        import os

        return os.getpid()

    def complete(self, requests: list[Request], sampling: SamplingParams) -> list[Completion]:
        return self.backend.complete(requests, sampling)


class RayReplicas(Backend):
    """The teacher spread over ``ray_cfg.num_workers`` replicas; batches go to the least busy one."""

    def __init__(self, teacher_cfg: Any, ray_cfg: Any) -> None:
        ray = _ray()
        self._started = False
        if not ray.is_initialized():
            ray.init(address=ray_cfg.address, include_dashboard=False, logging_level=logging.WARNING)
            self._started = True
        retries = ray_cfg.max_retries
        actor = ray.remote(Replica).options(num_cpus=ray_cfg.num_cpus, num_gpus=ray_cfg.num_gpus,
                                            max_restarts=retries, max_task_retries=retries)
        self._actors = [actor.remote(teacher_cfg) for _ in range(ray_cfg.num_workers)]
        self._busy = [0] * len(self._actors)
        info = ray.get(self._actors[0].describe.remote())  # also waits until a replica is built
        self.name, self.identity = info["name"], info["identity"]
        self.batch_size = info["batch_size"]  # the local batches, hence the same per-batch seeds
        self._vocab = info["vocab_size"]
        # a replica answers one batch at a time (an in-process engine is not thread-safe); one more
        # queued behind it keeps it busy while the driver writes the previous batch to the cache
        self.max_concurrency = 2 * len(self._actors)
        log.info("generate on Ray: %d replicas of %s", len(self._actors), self.identity)

    @property
    def vocab_size(self) -> int | None:
        return self._vocab

    def pids(self) -> list[int]:
        """The replicas' process ids (for operators and fault-injection tests)."""
        return _ray().get([a.pid.remote() for a in self._actors])

    def _pick(self) -> int:
        return min(range(len(self._actors)), key=self._busy.__getitem__)

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        i = self._pick()
        return _ray().get(self._actors[i].complete.remote(list(requests), sampling))

    async def acomplete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        if not requests:
            return []
        i = self._pick()
        self._busy[i] += 1
        try:
            return await self._actors[i].complete.remote(list(requests), sampling)
        finally:
            self._busy[i] -= 1

    def close(self) -> None:
        ray = _ray()
        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._started:
            ray.shutdown()

