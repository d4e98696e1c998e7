"""A token-level teacher that lives behind a backend (a server, or a model built in-process by a
backend) instead of a model name loaded here: ``objective.teacher`` given as a teacher config,
``{backend: openai, model: ..., options: {base_url: ...}}`` (the keys of ``BackendConfig``).

Its logprobs come through :meth:`Backend.score` as sparse top-k (+ tail) targets, rendered and
mapped to ids with the student's tokenizer. Before any training step the determinism self-test
(:mod:`reasondistill.backends.selftest`) scores a few training texts three ways and refuses a
teacher whose logprobs move by more than ``score_tolerance``; its result is part of the manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..backends import backend_class, backend_options, build_backend, scoring_backends
from ..backends.base import Backend, ScoreItem, ScoreResult
from ..backends.selftest import selftest
from ..config import BackendConfig, build
from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)


def is_served(teacher: Any) -> bool:
    """``objective.teacher`` is a backend config (a mapping), not a model name."""
    return isinstance(teacher, dict)


def teacher_config(value: dict[str, Any], section: str) -> BackendConfig:
    """The :class:`BackendConfig` of ``value``, checked without building anything: a known backend
    that can score, with valid options. Errors name ``section`` (``gkd.teacher``)."""
    if "backend" not in value:
        raise ConfigError(f"{section} as a backend config needs 'backend' (e.g. {{backend: openai, model: ..., "
                          f"options: {{base_url: ...}}}}), got keys {sorted(value)}")
    cfg = build(BackendConfig, value, section)
    cls = backend_class(cfg.backend)
    if not getattr(cls, "can_score", False):
        raise ConfigError(f"{section}.backend = {cfg.backend!r} cannot score completions, so it cannot be a "
                          f"token-level teacher; use one that can: {', '.join(scoring_backends())}")
    backend_options(cfg)  # the backend's own options, validated now
    return cfg


def check_tolerance(section: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"{section}.score_tolerance must be a number >= 0, got {value!r}")
    return float(value)


def open_teacher(value: dict[str, Any], section: str, student_tokenizer: Any) -> Backend:
    """Build the teacher backend, give it the student's tokenizer, and refuse an in-process teacher
    whose own tokenizer does not share the student's vocabulary."""
    backend = build_backend(teacher_config(value, section))
    try:
        backend.use_tokenizer(student_tokenizer)
    except ConfigError as e:  # a backend that checks the tokenizer itself (llamacpp)
        backend.close()
        raise ConfigError(f"{section}: {e}") from None
    own = getattr(backend, "tokenizer", None)
    if own is not None and own is not student_tokenizer:
        from .preflight import PreflightReport, check_vocab

        try:
            check_vocab(student_tokenizer, own, PreflightReport())
        except ConfigError as e:
            backend.close()
            raise ConfigError(f"{section} cannot teach the student token by token: {e}") from None
    return backend


def check_determinism(backend: Backend, items: Sequence[ScoreItem], tolerance: float) -> dict[str, Any]:
    """The self-test on ``items`` (raises when the teacher is not deterministic); its manifest record."""
    result = selftest(backend, items, tolerance=tolerance)
    log.info("teacher self-test: %s scored %d text(s) (%d tokens) three ways, max top-1 logprob difference %.3g "
             "<= %g", backend.identity, result.n_items, result.n_tokens, result.max_diff, tolerance)
    return result.to_dict()


def score_item(example: Any, path: Any = "<train>", line: int | None = None) -> ScoreItem:
    """A curated ``TrainExample`` as the text a teacher scores: its prompt and its one assistant message."""
    completion = example.completion
    if len(completion) != 1 or completion[0].get("role") != "assistant":
        raise InputError("a teacher scores one assistant message as the completion", file=path, line=line,
                         field="completion")
    return ScoreItem(tuple(dict(m) for m in example.prompt), completion[0]["content"])


def aligned(result: ScoreResult, token_ids: Sequence[int]) -> int:
    """How many leading ``token_ids`` the teacher scored as the same tokens: a re-tokenized decode can
    split differently, and the teacher's targets only mean something where the tokens agree."""
    n = 0
    for a, b in zip(result.token_ids, token_ids):
        if a != b:
            break
        n += 1
    return n
