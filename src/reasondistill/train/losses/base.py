"""The contract every token-level distillation loss shares.

A loss is a pure function ``loss(student_logits, teacher, mask, temperature=1.0, **options)``
returning a scalar: the mean over masked tokens of a per-token divergence.

- ``student_logits``: ``[B, T, V]`` raw logits.
- ``teacher``: either full logits ``[B, T, V]`` (a live teacher), or a :class:`SparseTeacher`
  ``(topk_ids [B, T, k], topk_logprobs [B, T, k], tail_logprob [B, T])`` read from a
  logprob store. In the sparse form both distributions live on ``k + 1`` buckets: the
  teacher's k ids plus one tail bucket holding the rest of the vocabulary. The student
  is projected onto the same buckets (its tail is the logsumexp of every other id,
  computed in cache-sized row chunks by :mod:`.sparse`).
- ``mask``: ``[B, T]``, true/1 where the token counts.
- ``temperature``: both distributions are softened as ``softmax(logits / temperature)``.
  For a sparse teacher the top-k logprobs and the tail are divided by the temperature
  and renormalised over the k + 1 buckets; this treats the tail as one token, exact at
  temperature 1 and an approximation otherwise. Losses are not rescaled by
  ``temperature ** 2``.

Log-probabilities are floored at :data:`LOG_FLOOR` so empty buckets give zero terms and
finite gradients instead of ``nan``. One exception: a sparse teacher's tail is ``-inf`` when its
top k sum to 1 in float32 (a third of the tokens of a confident 135M teacher), yet the other
``V - k`` ids do hold mass, just below what float32 logprobs resolve. That tail is taken as
:data:`TAIL_FLOOR` (the resolution), not ``LOG_FLOOR``: at ``LOG_FLOOR`` reverse KL and JSD charged
the student about 1e4 nats per unit of tail mass (a first logged loss of 110 nats per token).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .sparse import sparse_logprobs

LOG_FLOOR = -1e4  # exp() of this is exactly 0 in float32
TAIL_FLOOR = math.log(2.0 ** -24)  # -16.6: a teacher tail under float32 resolution, where V > k


class SparseTeacher(NamedTuple):
    topk_ids: torch.Tensor  # [B, T, k] long
    topk_logprobs: torch.Tensor  # [B, T, k]
    tail_logprob: torch.Tensor  # [B, T]


Teacher = torch.Tensor | SparseTeacher | tuple


def log_distributions(student_logits: torch.Tensor, teacher: Teacher, temperature: float = 1.0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(student_logp, teacher_logp)``, both normalised log-probabilities over the same
    support: the vocabulary (full teacher) or the teacher's k ids plus a tail bucket."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if isinstance(teacher, torch.Tensor):
        if teacher.shape != student_logits.shape:
            raise ValueError(f"teacher logits {tuple(teacher.shape)} do not match student logits "
                             f"{tuple(student_logits.shape)}")
        s_logp = F.log_softmax(student_logits.float() / temperature, dim=-1)
        t_logp = F.log_softmax(teacher.float() / temperature, dim=-1)
        return s_logp.clamp_min(LOG_FLOOR), t_logp.clamp_min(LOG_FLOOR)
    ids, t_top, t_tail = teacher
    if ids.shape[:-1] != student_logits.shape[:-1] or t_top.shape != ids.shape or t_tail.shape != ids.shape[:-1]:
        raise ValueError(f"sparse teacher shapes ids {tuple(ids.shape)}, logprobs {tuple(t_top.shape)}, "
                         f"tail {tuple(t_tail.shape)} do not fit student logits {tuple(student_logits.shape)}")
    ids = ids.long()
    t_tail = t_tail.float()
    if ids.shape[-1] < student_logits.shape[-1]:  # ids outside the top k exist: their mass is not 0
        t_tail = t_tail.clamp_min(TAIL_FLOOR)
    t_logp = torch.cat([t_top.float(), t_tail.unsqueeze(-1)], dim=-1)
    t_logp = F.log_softmax(t_logp / temperature, dim=-1)
    s_top, s_tail, _ = sparse_logprobs(student_logits, ids, temperature)  # chunked; see sparse.py
    s_sparse = torch.cat([s_top, s_tail.unsqueeze(-1)], dim=-1)
    return s_sparse.clamp_min(LOG_FLOOR), t_logp.clamp_min(LOG_FLOOR)


def kl(p_logp: torch.Tensor, q_logp: torch.Tensor) -> torch.Tensor:
    """Per-token ``KL(p || q)`` summed over the last dim (the support)."""
    return (p_logp.exp() * (p_logp - q_logp)).sum(dim=-1)


def mixture(a_logp: torch.Tensor, b_logp: torch.Tensor, weight_b: float) -> torch.Tensor:
    """``log((1 - w) * a + w * b)`` for ``w`` in (0, 1)."""
    w = torch.tensor(weight_b, dtype=a_logp.dtype, device=a_logp.device)
    return torch.logsumexp(torch.stack([a_logp + torch.log1p(-w), b_logp + torch.log(w)]), dim=0)


def masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_token [B, T]`` over ``mask``; 0 (with a gradient path) when the mask is empty."""
    mask = mask.bool()
    if mask.shape != per_token.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the tokens {tuple(per_token.shape)}")
    total = torch.where(mask, per_token, torch.zeros_like(per_token)).sum()
    return total / mask.sum().clamp_min(1)
