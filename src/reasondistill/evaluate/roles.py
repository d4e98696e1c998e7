"""Which backend a student runs on: any row of the backend table, as for a teacher.

A student (``student_before``, ``student_after``, the probe's student, a self-taught teacher of
the next loop round) is a backend config like the teacher section: ``eval.student_backend`` and
``eval.student_options`` are its ``backend`` and ``options``, its ``model`` the student's
checkpoint, and dtype, device and batch size the evaluation's. transformers is the default;
llamacpp runs a GGUF student, vllm a folder on a GPU, openai a student a server serves.
"""

from __future__ import annotations

from typing import Any

from ..backends import BACKENDS, backend_class
from ..config import BackendConfig, build
from ..registry import check


def student_config(recipe: Any, model: str, *, dtype: str | None = None, device: str | None = None,
                   batch_size: int | None = None) -> BackendConfig:
    """The backend config of the student ``model`` (a checkpoint folder, ``.gguf``, packaged name or a
    served model's name) on ``eval.student_backend``; dtype, device and batch size default to ``eval``'s."""
    ev = recipe.eval
    return BackendConfig(backend=ev.student_backend, model=model, dtype=dtype or ev.dtype, device=device or ev.device,
                         batch_size=batch_size or ev.batch_size, trust_remote_code=recipe.train.trust_remote_code,
                         options=dict(ev.student_options))


def check_student_backend(eval_cfg: Any) -> None:
    """``eval.student_backend`` is a row of the table and ``eval.student_options`` its valid options,
    checked with the rest of the recipe, before any model loads."""
    check(BACKENDS, eval_cfg.student_backend, "backend (eval.student_backend)")
    build(backend_class(eval_cfg.student_backend).Options, eval_cfg.student_options, "eval.student_options")
