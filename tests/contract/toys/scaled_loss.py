"""Toy distillation loss with an option of its own: ``scale`` times half the squared distance
between the two distributions per token. One file; the test adds its row to ``LOSSES``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reasondistill.errors import ConfigError
from reasondistill.train.losses.base import Teacher, log_distributions, masked_mean


@dataclass(frozen=True)
class ScaledOptions:
    scale: float = 1.0  # a positive factor on the loss

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not self.scale > 0:
            raise ConfigError(f"scale must be a number > 0, got {self.scale!r}")


def scaled(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, temperature: float = 1.0,
           *, scale: float = 1.0) -> torch.Tensor:
    s, t = log_distributions(student_logits, teacher, temperature)
    return scale * masked_mean(0.5 * (t.exp() - s.exp()).pow(2).sum(dim=-1), mask)
