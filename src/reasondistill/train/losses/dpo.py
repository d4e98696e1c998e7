"""DPO's sigmoid loss (Rafailov et al. 2023), from summed completion log-probabilities:

    loss = -log sigmoid(beta * ((log p(y+) - log p_ref(y+)) - (log p(y-) - log p_ref(y-))))

averaged over the batch. The reference terms are constants (the starting model's), so the
trainer computes them once before training instead of running a reference model every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_sigmoid_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor,
                     ref_rejected: torch.Tensor, *, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, chosen_rewards, rejected_rewards)``; every input is a ``(batch,)`` sum of completion
    log-probabilities, the rewards are ``beta * (logp - ref_logp)`` (detached), as TRL logs them."""
    chosen_reward = beta * (chosen - ref_chosen.to(chosen.dtype))
    rejected_reward = beta * (rejected - ref_rejected.to(rejected.dtype))
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    return loss, chosen_reward.detach(), rejected_reward.detach()
