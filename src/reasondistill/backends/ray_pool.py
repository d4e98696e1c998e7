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

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import check_address
from ..errors import ConfigError, ServiceError
from .base import Backend, Completion, Request, SamplingParams

log = logging.getLogger(__name__)

#: the Ray release this module is tested against (the `ray` extra pins it)
RAY_VERSION = "2.60.0"


@dataclass
class RayConfig:
    """``generate.ray``: where and how wide ``generate.executor: ray`` fans out (see
    ``reasondistill.backends.ray_pool``). The driver still writes the cache and the traces."""

    address: str | None = None  # None: join the ray.init() already made in this process, else start a local one; "auto" | ray://host:port
    num_workers: int = 2  # backend replicas (Ray actors), each built from `teacher`
    num_cpus: float = 1.0  # CPUs reserved per replica
    num_gpus: float = 0.0  # GPUs reserved per replica (an in-process engine on a GPU node)
    max_retries: int = 3  # a replica that dies is restarted and its unfinished batches resubmitted this often
    connect_timeout_s: float = 30.0  # how long to wait for the cluster at `address` to answer

    def __post_init__(self) -> None:
        if self.address is not None and self.address not in ("auto", "local"):
            check_address("generate.ray.address", self.address)
        if self.connect_timeout_s <= 0:
            raise ConfigError("generate.ray.connect_timeout_s must be > 0")
        if self.num_workers < 1:
            raise ConfigError("generate.ray.num_workers must be >= 1")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ConfigError("generate.ray.num_cpus and num_gpus must be >= 0")
        if self.max_retries < 0:
            raise ConfigError("generate.ray.max_retries must be >= 0")


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"generate.executor: ray needs Ray: pip install 'reasondistill[ray]' "
                          f"(ray=={RAY_VERSION})") from e
    return ray


def probe(address: str, timeout_s: float) -> None:
    """A TCP connection to a ``host:port`` Ray address within ``timeout_s``: Ray itself retries a
    dead address for minutes, printing only its own warnings."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s):
            pass
    except OSError as e:
        what = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
        raise ServiceError(f"cannot reach the Ray cluster at generate.ray.address={address}: {what} "
                           f"(within generate.ray.connect_timeout_s={timeout_s:g}); start it (ray start --head) "
                           f"or fix the address") from None


def connect(ray: Any, address: str | None, timeout_s: float) -> None:
    """``ray.init`` bounded by ``timeout_s``: the address answers TCP first, then the handshake runs
    on a helper thread and is given up (a :class:`ServiceError`) if it does not finish in time."""
    if address not in (None, "auto", "local"):
        probe(address, timeout_s)
    outcome: list[BaseException | None] = []
    where = f"generate.ray.address={address}" if address else "a local Ray instance"
    if address in (None, "local"):  # starting a local instance: on this thread, at its own pace
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            raise ServiceError(f"cannot start {where}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
        return

    def init() -> None:
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(e)

    worker = threading.Thread(target=init, name="ray-init", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise ServiceError(f"no answer from the Ray cluster at {where} within generate.ray.connect_timeout_s="
                           f"{timeout_s:g}; is it a Ray head node (ray start --head)?")
    if isinstance(outcome[0], (ConnectionError, RuntimeError, TimeoutError)):
        first = (str(outcome[0]).splitlines() or [type(outcome[0]).__name__])[0]
        raise ServiceError(f"cannot connect to {where}: {first}") from None
    if outcome[0] is not None:
        raise outcome[0]


class Replica:
    """What runs inside one Ray actor: a backend built from the teacher config, kept for the run."""

    def __init__(self, teacher_cfg: Any) -> None:
        from . import build_backend

        self.backend = build_backend(teacher_cfg)

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
        self._retries = ray_cfg.max_retries
        if not ray.is_initialized():
            connect(ray, ray_cfg.address, ray_cfg.connect_timeout_s)
            self._started = True
        retries = ray_cfg.max_retries
        actor = ray.remote(Replica).options(num_cpus=ray_cfg.num_cpus, num_gpus=ray_cfg.num_gpus,
                                            max_restarts=retries, max_task_retries=retries)
        self._actors = [actor.remote(teacher_cfg) for _ in range(ray_cfg.num_workers)]
        self._busy = [0] * len(self._actors)
        with self._replica_failures(starting=True):
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

    @contextlib.contextmanager
    def _replica_failures(self, starting: bool = False) -> Iterator[None]:
        """A replica that died for good (retries spent) is the cluster failing, not a bug: a
        :class:`ServiceError` naming ``generate.ray.max_retries``; the batches already returned are
        in the sample cache, so the same command resumes from there. ``starting``: the first
        replica could not even be built (its error, e.g. a teacher that does not load, is named)."""
        from ray.exceptions import RayActorError

        try:
            yield
        except RayActorError as e:
            lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
            first = lines[0] if lines else type(e).__name__
            if starting:
                cause = next((ln for ln in reversed(lines) if "Error" in ln.split(":", 1)[0]), first)
                raise ServiceError(f"a Ray replica of the teacher could not start: {cause[:300]}") from None
            raise ServiceError(f"a Ray replica died with no retries left (generate.ray.max_retries="
                               f"{self._retries}): {type(e).__name__}: {first[:200]}; finished samples are cached, "
                               f"run the same command to resume") from None

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        i = self._pick()
        with self._replica_failures():
            return _ray().get(self._actors[i].complete.remote(list(requests), sampling))

    async def acomplete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        if not requests:
            return []
        i = self._pick()
        self._busy[i] += 1
        try:
            with self._replica_failures():
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

