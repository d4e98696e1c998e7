"""Forward KL, ``KL(teacher || student)``: the classic (Hinton) distillation objective.

Mass-covering: the student is pushed to put probability wherever the teacher does.
"""

from __future__ import annotations

import torch

from .base import Teacher, kl, log_distributions, masked_mean


def forward_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
               temperature: float = 1.0) -> torch.Tensor:
    s, t = log_distributions(student_logits, teacher, temperature)
    return masked_mean(kl(t, s), mask)
