"""Teacher backends (stage 2). Lazy name table: add a backend with one file and one row.

``vllm``, ``llamacpp`` and ``openai`` are planned rows; the contract in ``base.py``
(batch ``complete`` plus async ``acomplete``) is shaped for them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

BACKENDS: dict[str, str] = {
    "transformers": "reasondistill.teachers.transformers:TransformersTeacher",
    "program": "reasondistill.teachers.program:ProgramTeacher",
    "dummy": "reasondistill.teachers.dummy:DummyTeacher",
}


def backend_class(name: str) -> Any:
    if name not in BACKENDS:
        raise ConfigError(f"unknown teacher backend '{name}' (available: {', '.join(BACKENDS)})")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_teacher(cfg: Any):
    """Instantiate the teacher a :class:`~reasondistill.config.TeacherConfig` describes."""
    cls = backend_class(cfg.backend)
    try:
        if cfg.backend == "transformers":
            return cls(cfg.model, dtype=cfg.dtype, device=cfg.device, batch_size=cfg.batch_size,
                       trust_remote_code=cfg.trust_remote_code, **cfg.options)
        return cls(**cfg.options)
    except TypeError as e:
        raise ConfigError(f"teacher.options do not fit the '{cfg.backend}' backend: {e}") from None


def run(*args: Any, **kwargs: Any) -> dict:
    """The generate stage; see :func:`reasondistill.teachers.generate.run`."""
    from .generate import run as _run
    return _run(*args, **kwargs)
