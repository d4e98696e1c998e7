"""Reverse KL, ``KL(student || teacher)`` (MiniLLM's objective).

Mode-seeking: the student is penalised for mass where the teacher has little.
"""

from __future__ import annotations

import torch

from .base import Teacher, kl, log_distributions, masked_mean


def reverse_kl(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
               temperature: float = 1.0) -> torch.Tensor:
    s, t = log_distributions(student_logits, teacher, temperature)
    return masked_mean(kl(s, t), mask)
