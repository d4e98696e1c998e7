"""Generalised Jensen-Shannon divergence (GKD, Agarwal et al. 2024, eq. 1), with TRL's conventions.

With ``M = beta * teacher + (1 - beta) * student``::

    JSD_beta = beta * KL(teacher || M) + (1 - beta) * KL(student || M)

``beta = 0`` is taken as forward ``KL(teacher || student)`` and ``beta = 1`` as reverse
``KL(student || teacher)``, exactly as ``trl``'s ``GKDTrainer.generalized_jsd_loss`` does
(the formula itself vanishes at both ends). ``beta = 0.5`` is the symmetric JSD.

The tensor helpers are imported in the function: :class:`JSDOptions` is read when a recipe is
checked, before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError

if TYPE_CHECKING:
    import torch

    from .base import Teacher


def number(name: str, value: object) -> float:
    """``value`` as a float, or a :class:`ConfigError` naming option ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class JSDOptions:
    beta: float = 0.5  # 0 = forward KL(teacher || student), 1 = reverse KL, 0.5 = symmetric JSD

    def __post_init__(self) -> None:
        if not 0.0 <= number("beta", self.beta) <= 1.0:
            raise ConfigError(f"beta must be in [0, 1] (0: forward KL, 1: reverse KL), got {self.beta}")


def jsd(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, temperature: float = 1.0,
        *, beta: float = 0.5) -> torch.Tensor:
    from .base import kl, log_distributions, masked_mean, mixture

    JSDOptions(beta)
    s, t = log_distributions(student_logits, teacher, temperature)
    if beta == 0.0:
        per_token = kl(t, s)
    elif beta == 1.0:
        per_token = kl(s, t)
    else:
        m = mixture(s, t, beta)
        per_token = beta * kl(t, m) + (1.0 - beta) * kl(s, m)
    return masked_mean(per_token, mask)
