"""REDI, Reinforcement Distillation (Xu et al. 2025, "Harnessing Negative Signals:
Reinforcement Distillation from Teacher Data for LLM Reasoning"), reference-free:

    loss = -(1/|y+|) log p(y+ | x)  +  alpha * (1/|y-|) log p(y- | x)

averaged over the batch. Each completion's log-likelihood is normalised by its own length;
``alpha`` in [0, 1] down-weights the push on the incorrect trace (0: SFT on the correct one only).
The paper's default is 0.8: pushing the incorrect trace down as hard as the correct one up
(alpha = 1) tends to collapse both likelihoods.
"""

from __future__ import annotations

import torch


def redi_loss(chosen_logps: torch.Tensor, chosen_lengths: torch.Tensor, rejected_logps: torch.Tensor,
              rejected_lengths: torch.Tensor, *, alpha: float = 0.8) -> torch.Tensor:
    """Scalar REDI loss from per-sequence summed completion log-probabilities, shape ``(batch,)``,
    and completion lengths in tokens (clamped to at least 1)."""
    chosen = chosen_logps / chosen_lengths.clamp(min=1).to(chosen_logps.dtype)
    rejected = rejected_logps / rejected_lengths.clamp(min=1).to(rejected_logps.dtype)
    return (-chosen + alpha * rejected).mean()
