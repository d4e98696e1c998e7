"""Total variation distance, ``0.5 * sum |teacher - student|`` per token (bounded in [0, 1])."""

from __future__ import annotations

import torch

from .base import Teacher, log_distributions, masked_mean


def tv(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
       temperature: float = 1.0) -> torch.Tensor:
    s, t = log_distributions(student_logits, teacher, temperature)
    return masked_mean(0.5 * (t.exp() - s.exp()).abs().sum(dim=-1), mask)
