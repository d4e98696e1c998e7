"""Skew KL divergences from DistiLLM (Ko et al. 2024), with skew ``alpha`` in [0, 1)::

    skew forward  SKL  = KL(teacher || alpha * teacher + (1 - alpha) * student)
    skew reverse  SRKL = KL(student || alpha * student + (1 - alpha) * teacher)

``alpha = 0`` gives plain forward / reverse KL; mixing in some of the first distribution
keeps the divergence and its gradient bounded when the other one has no mass somewhere.
DistiLLM uses ``alpha = 0.1``. ``alpha = 1`` makes both identically 0, so it is refused.
"""

from __future__ import annotations

import torch

from .base import Teacher, kl, log_distributions, masked_mean, mixture


def _check(alpha: float) -> None:
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"skew KL alpha must be in [0, 1), got {alpha}")


def skew_forward_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
                    temperature: float = 1.0, *, alpha: float = 0.1) -> torch.Tensor:
    _check(alpha)
    s, t = log_distributions(student_logits, teacher, temperature)
    m = s if alpha == 0.0 else mixture(s, t, alpha)  # alpha * teacher + (1 - alpha) * student
    return masked_mean(kl(t, m), mask)


def skew_reverse_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
                    temperature: float = 1.0, *, alpha: float = 0.1) -> torch.Tensor:
    _check(alpha)
    s, t = log_distributions(student_logits, teacher, temperature)
    m = t if alpha == 0.0 else mixture(t, s, alpha)  # alpha * student + (1 - alpha) * teacher
    return masked_mean(kl(s, m), mask)
