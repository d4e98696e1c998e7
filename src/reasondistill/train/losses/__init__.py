"""Training losses: one pure tensor function per file; the shared contract is in ``base.py``.

Name table (lazy ``module:function`` strings, no import side effects); trainers look
losses up here instead of branching on a loss name. A loss's own options (``beta``,
``alpha``) are keyword-only parameters of its function; :func:`options_for` picks the
ones a loss takes out of a config.
"""

from __future__ import annotations

import importlib
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
    if name not in LOSSES:
        from ...errors import ConfigError
        raise ConfigError(f"unknown loss '{name}' (available: {', '.join(LOSSES)})")
    module, fn = LOSSES[name].split(":")
    return getattr(importlib.import_module(module), fn)


def options_for(fn: Callable[..., Any], **candidates: Any) -> dict[str, Any]:
    """The subset of ``candidates`` that ``fn`` takes as keyword-only options."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in candidates.items()
            if k in params and params[k].kind is inspect.Parameter.KEYWORD_ONLY}
