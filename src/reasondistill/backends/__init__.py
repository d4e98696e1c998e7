"""Generator backends: anything that turns conversations into text and logprobs.

Used by the generate stage, by evaluation (students and teachers alike) and by live
teachers in training. ``BACKENDS`` is the lazy name table: a backend is one file with a
:class:`~reasondistill.backends.base.Backend` subclass plus one row here. What callers need
to know about a row is a class attribute of it (``can_score``, ``reads_model``,
``local_weights``, ``requires``), never a list of names outside this package.
"""

from __future__ import annotations

from typing import Any

BACKENDS: dict[str, str] = {
    "transformers": "reasondistill.backends.transformers:TransformersBackend",
    "program": "reasondistill.backends.program:ProgramBackend",
    "dummy": "reasondistill.backends.dummy:DummyBackend",
    "openai": "reasondistill.backends.openai:OpenAIBackend",
    "llamacpp": "reasondistill.backends.llamacpp:LlamaCppBackend",
    "vllm": "reasondistill.backends.vllm:VLLMBackend",
}


#: the row that talks to an OpenAI-compatible server at a ``base_url`` (``evaluate --base-url``)
URL_BACKEND = "openai"


def backend_class(name: str) -> Any:
    from ..registry import lookup
    return lookup(BACKENDS, name, "teacher backend")


def scoring_backends() -> list[str]:
    """The rows that can score completions (``can_score``): any of them can be a token-level teacher."""
    return [name for name in BACKENDS if backend_class(name).can_score]


def engine_modules() -> dict[str, str]:
    """``{row: module}`` for the rows whose engine is an optional package (``requires``)."""
    return {name: cls.requires for name in BACKENDS if (cls := backend_class(name)).requires}


def label(cfg: Any) -> str:
    """How tables name a teacher (or a student's backend config): its model where the backend
    reads one (``reads_model``), else the backend's name."""
    return cfg.model if backend_class(cfg.backend).reads_model else cfg.backend


def backend_options(cfg: Any, where: str = "teacher") -> Any:
    """The backend's own ``Options`` built from ``teacher.options`` (checked before any load)."""
    from ..config import build
    return build(backend_class(cfg.backend).Options, cfg.options, f"{where}.options")


def build_backend(cfg: Any):
    """Instantiate the backend a :class:`~reasondistill.config.BackendConfig` describes."""
    return backend_class(cfg.backend).from_config(cfg, backend_options(cfg))


class BackendPool:
    """Backends built on first use and shared until :meth:`close`: the pipeline's teacher is
    loaded once for generation and its own evaluation, and not at all when both are reused."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}

    @staticmethod
    def _key(cfg: Any) -> str:
        import dataclasses
        import json

        if hasattr(cfg, "backend_config"):  # a named teacher: its backend, shared with same-model teachers
            cfg = cfg.backend_config()
        return json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)

    def add(self, cfg: Any, backend: Any) -> None:
        """Serve an already built backend for ``cfg`` (a model held in memory, a test double);
        the pool closes it with the others."""
        self._open[self._key(cfg)] = backend

    def identity(self, cfg: Any) -> str:
        for_cfg = self._open.get(self._key(cfg))
        if for_cfg is not None:
            return for_cfg.identity
        return backend_class(cfg.backend).identity_of(cfg, backend_options(cfg))

    def get(self, cfg: Any) -> Any:
        key = self._key(cfg)
        if key not in self._open:
            self._open[key] = build_backend(cfg)
        return self._open[key]

    def release(self, cfg: Any) -> None:
        """Close the backend built for ``cfg``, if any (a model needed once, e.g. the probed student)."""
        backend = self._open.pop(self._key(cfg), None)
        if backend is not None:
            backend.close()

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def __enter__(self) -> BackendPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
