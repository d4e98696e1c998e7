"""SimPO's loss (Meng et al. 2024), reference-free, from summed completion log-probabilities and lengths:

    loss = -log sigmoid(beta * (log p(y+)/|y+| - log p(y-)/|y-|) - gamma)

averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def simpo_loss(chosen: torch.Tensor, chosen_lengths: torch.Tensor, rejected: torch.Tensor,
               rejected_lengths: torch.Tensor, *, beta: float, gamma: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, chosen_rewards, rejected_rewards)``; the rewards are ``beta`` times the mean token
    log-probability of each completion (detached)."""
    chosen_reward = beta * chosen / chosen_lengths.clamp(min=1).to(chosen.dtype)
    rejected_reward = beta * rejected / rejected_lengths.clamp(min=1).to(rejected.dtype)
    loss = -F.logsigmoid(chosen_reward - rejected_reward - gamma).mean()
    return loss, chosen_reward.detach(), rejected_reward.detach()
