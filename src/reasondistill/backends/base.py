"""The teacher contract: anything that turns prompts into rationales.

An LLM behind a generation backend, a program that solves procedural tasks, or the
student itself prompted with hints all implement :class:`Backend`. The contract is
one batch call plus ``close``; an async variant exists so network backends (vLLM
servers, OpenAI-compatible APIs) can overlap requests.
"""

from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..records import Problem


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding settings. ``temperature == 0`` means greedy."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    top_logprobs: int = 0  # > 0: return that many top logprobs per generated token
    #: finish a sequence once its ``Answer: X`` line is written in full (``grading.answers.answer_line_end``):
    #: the text ends there, finish_reason "stop". Greedy evaluation sets it where the verifier reads that
    #: line. Only the transformers backend honours it; the others ignore it (they run to EOS or the limit)
    stop_at_answer: bool = False

    def key(self) -> dict[str, Any]:
        """What makes two samples interchangeable (part of the cache key). ``stop_at_answer`` only
        when set, so samples cached before it existed keep their keys."""
        d = dataclasses.asdict(self)
        d["stop"] = list(self.stop)
        if not self.stop_at_answer:
            d.pop("stop_at_answer")
        return d


@dataclass(frozen=True, slots=True)
class Request:
    """One sample to draw: a conversation for one problem, and its sample index."""

    problem: Problem
    messages: tuple[dict[str, str], ...]
    sample_idx: int
    hinted: bool = False
    style: str = "cot"


@dataclass(frozen=True, slots=True)
class Completion:
    """What a backend returns for one request."""

    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[dict[str, Any]] | None = None  # per token: {"id": int, "top": [[id, logprob], ...]}
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """A text to score: the prompt (a conversation, rendered with the chat template of the
    tokenizer the backend scores with, or an already rendered string) and the completion after it.

    A trainer that holds the exact token ids (a student's samples) also passes them: backends that
    can score ids do so, so a decoded text that would re-tokenize differently still lines up."""

    prompt: tuple[dict[str, str], ...] | str
    completion: str
    prompt_ids: tuple[int, ...] | None = None
    completion_ids: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The teacher's view of one completion: its token ids and, per token, the logprob store's
    format ``{"id", "logprob", "top": [[id, logprob], ...]}`` (``logprob``: of ``id`` itself)."""

    token_ids: list[int]
    logprobs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NoOptions:
    """For backends that take no ``teacher.options``."""


class Backend(ABC):
    """Backend contract. Implementations live one per file; see ``backends/__init__.py``."""

    #: the backend's own ``teacher.options``, validated before anything loads
    Options: ClassVar[type] = NoOptions
    #: short name written into traces
    name: str = "teacher"
    #: stable identity of the model/program behind this backend (cache key part)
    identity: str = "teacher"
    #: preferred number of requests per ``complete`` call
    batch_size: int = 8
    #: batches the sampling loop keeps in flight (in-process engines: 1)
    max_concurrency: int = 1
    #: implements :meth:`score` (a teacher for KD, GKD and KDRL)
    can_score: bool = False
    #: ``teacher.model`` picks what it runs (tables then name it by its model, not by the backend)
    reads_model: bool = False
    #: ``teacher.model`` names weights on this machine (hashed into evaluation settings, and a student's
    #: content identity and task prefix are read from them); a served model or a program has none here
    local_weights: bool = False
    #: the optional module its engine needs (found, never imported, by ``reasondistill env``); None: core
    requires: str | None = None

    @classmethod
    def identity_of(cls, cfg: Any, options: Any) -> str:
        """The ``identity`` an instance built from this config will have, found without loading
        anything, so a finished evaluation or generation is recognised before a model loads."""
        return cls.identity

    @classmethod
    def from_config(cls, cfg: Any, options: Any) -> Backend:
        """Build from a ``BackendConfig`` and this backend's ``Options``; backends that need the
        model, dtype or device override this."""
        return cls(**dataclasses.asdict(options))

    @property
    def vocab_size(self) -> int | None:
        """Size of the token id space of returned logprobs (``None``: not known or no logprobs)."""
        return None

    def prompt_length(self, request: Request) -> int | None:
        """The prompt's length in tokens, by which greedy draws group requests of similar length
        into one batch (less padding); None (the default): not known, requests keep their order."""
        return None

    @abstractmethod
    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        """Return one completion per request, in order."""

    async def acomplete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        """What the sampling loop awaits. In-process engines block anyway, so the default runs
        ``complete`` on the loop's own thread (Ctrl-C then stops it at once, where a worker
        thread would finish its batch first); network backends override it with real I/O."""
        return self.complete(requests, sampling)

    def score(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        """The teacher's top-``top_k`` logprobs at every completion token of each item, in order.
        Backends that can score set ``can_score`` and override this."""
        from ..errors import ConfigError
        from . import scoring_backends
        raise ConfigError(f"backend {self.name!r} ({type(self).__name__}) cannot score completions, so it cannot "
                          f"be a distillation teacher; use one that can: {', '.join(scoring_backends())}")

    def use_tokenizer(self, tokenizer: Any) -> None:
        """The tokenizer :meth:`score` renders conversations with and maps token strings to ids by
        (the student's: ids must be the student's). In-process backends use their own and ignore it."""

    def close(self) -> None:
        """Release models, processes or connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_blocking(coro: Awaitable[Any]) -> Any:
    """Run ``coro`` to the end from synchronous code, beside the caller's event loop if it has one
    (called from inside a running loop, e.g. a notebook, ``asyncio.run`` would refuse)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
