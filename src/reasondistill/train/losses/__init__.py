"""Training losses: one pure tensor function per file; the shared contract is in ``base.py``.

Name table (lazy ``module:function`` strings, no import side effects); trainers look
losses up here instead of branching on a loss name. A loss's own options (``beta``,
``alpha``) are keyword-only parameters of its function; :func:`options_for` picks the
ones a loss takes out of a config. Every loss takes a sparse (offline KD) or a full
(GKD's live teacher) teacher alike, so both objectives choose from the whole table with
the same options (:func:`check_options`, :func:`configured_loss`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

LOSSES: dict[str, str] = {
    "forward_kl": "reasondistill.train.losses.forward_kl:forward_kl",
    "reverse_kl": "reasondistill.train.losses.reverse_kl:reverse_kl",
    "jsd": "reasondistill.train.losses.jsd:jsd",
    "skew_forward_kl": "reasondistill.train.losses.skew_kl:skew_forward_kl",
    "skew_reverse_kl": "reasondistill.train.losses.skew_kl:skew_reverse_kl",
    "tv": "reasondistill.train.losses.tv:tv",
}


def get_loss(name: str) -> Callable[..., Any]:
    """The loss function registered as ``name``."""
    from ...registry import lookup
    return lookup(LOSSES, name, "loss")


def options_for(fn: Callable[..., Any], **candidates: Any) -> dict[str, Any]:
    """The subset of ``candidates`` that ``fn`` takes as keyword-only options."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in candidates.items()
            if k in params and params[k].kind is inspect.Parameter.KEYWORD_ONLY}


def check_options(section: str, loss: str, beta: float, alpha: float) -> None:
    """Raise :class:`ConfigError` (naming ``section``, e.g. ``kd``) unless ``loss`` is in the table and
    its options are in range; a config checks them all, whichever loss it names, so switching loss
    never meets a stale bad value."""
    from ...errors import ConfigError

    if loss not in LOSSES:
        raise ConfigError(f"{section}.loss = {loss!r} is not one of: {', '.join(LOSSES)}")
    if not 0.0 <= beta <= 1.0:
        raise ConfigError(f"{section}.beta must be in [0, 1] (0: forward KL, 1: reverse KL), got {beta}")
    if not 0.0 <= alpha < 1.0:
        raise ConfigError(f"{section}.alpha must be in [0, 1) (alpha = 1 makes the skew KL identically 0), "
                          f"got {alpha}")


def configured_loss(cfg: Any) -> Callable[..., Any]:
    """``loss(student_logits, teacher, mask, temperature)`` for a config with ``loss``, ``beta`` and
    ``alpha`` fields: the table's function with the options it takes bound."""
    fn = get_loss(cfg.loss)
    return functools.partial(fn, **options_for(fn, beta=cfg.beta, alpha=cfg.alpha))
