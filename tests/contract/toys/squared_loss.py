"""Toy distillation loss: half the squared distance between the two distributions per token.
One file; the test adds its row to ``LOSSES``."""

from __future__ import annotations

import torch

from reasondistill.train.losses.base import Teacher, log_distributions, masked_mean


def squared(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor,
            temperature: float = 1.0) -> torch.Tensor:
    s, t = log_distributions(student_logits, teacher, temperature)
    return masked_mean(0.5 * (t.exp() - s.exp()).pow(2).sum(dim=-1), mask)
