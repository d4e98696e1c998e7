"""Generalised Jensen-Shannon divergence (GKD, Agarwal et al. 2024, eq. 1), with TRL's conventions.

With ``M = beta * teacher + (1 - beta) * student``::

    JSD_beta = beta * KL(teacher || M) + (1 - beta) * KL(student || M)

``beta = 0`` is taken as forward ``KL(teacher || student)`` and ``beta = 1`` as reverse
``KL(student || teacher)``, exactly as ``trl``'s ``GKDTrainer.generalized_jsd_loss`` does
(the formula itself vanishes at both ends). ``beta = 0.5`` is the symmetric JSD.
"""

from __future__ import annotations

import torch

from .base import Teacher, kl, log_distributions, masked_mean, mixture


def jsd(student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, temperature: float = 1.0,
        *, beta: float = 0.5) -> torch.Tensor:
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"jsd beta must be in [0, 1], got {beta}")
    s, t = log_distributions(student_logits, teacher, temperature)
    if beta == 0.0:
        per_token = kl(t, s)
    elif beta == 1.0:
        per_token = kl(s, t)
    else:
        m = mixture(s, t, beta)
        per_token = beta * kl(t, m) + (1.0 - beta) * kl(s, m)
    return masked_mean(per_token, mask)
