"""Skew KL divergences from DistiLLM (Ko et al. 2024), with skew ``alpha`` in [0, 1)::

    skew forward  SKL  = KL(teacher || alpha * teacher + (1 - alpha) * student)
    skew reverse  SRKL = KL(student || alpha * student + (1 - alpha) * teacher)

``alpha = 0`` gives plain forward / reverse KL; mixing in some of the first distribution
keeps the divergence and its gradient bounded when the other one has no mass somewhere.
DistiLLM uses ``alpha = 0.1``. ``alpha = 1`` makes both identically 0, so it is refused.

The tensor helpers are imported in the functions: :class:`SkewOptions` is read when a recipe is
checked, before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .jsd import number

if TYPE_CHECKING:
    import torch

    from .base import Teacher


@dataclass(frozen=True)
class SkewOptions:
    alpha: float = 0.1  # share of the first distribution mixed into the second, in [0, 1)

    def __post_init__(self) -> None:
        if not 0.0 <= number("alpha", self.alpha) < 1.0:
            raise ConfigError(f"alpha must be in [0, 1) (alpha = 1 makes the skew KL identically 0), "
                              f"got {self.alpha}")


def skew_forward_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
                    temperature: float = 1.0, *, alpha: float = 0.1) -> torch.Tensor:
    from .base import kl, log_distributions, masked_mean, mixture

    SkewOptions(alpha)
    s, t = log_distributions(student_logits, teacher, temperature)
    m = s if alpha == 0.0 else mixture(s, t, alpha)  # alpha * teacher + (1 - alpha) * student
    return masked_mean(kl(t, m), mask)


def skew_reverse_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
                    temperature: float = 1.0, *, alpha: float = 0.1) -> torch.Tensor:
    from .base import kl, log_distributions, masked_mean, mixture

    SkewOptions(alpha)
    s, t = log_distributions(student_logits, teacher, temperature)
    m = t if alpha == 0.0 else mixture(t, s, alpha)  # alpha * student + (1 - alpha) * teacher
    return masked_mean(kl(s, m), mask)
