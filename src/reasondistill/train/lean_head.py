"""A lean LM head: vocabulary-sized logits for one cache-sized chunk of positions at a time.

A loss over ``N`` positions would otherwise hold ``[N, V]`` logits (SmolLM2: 49k columns, 192 KiB
per position in fp32), plus their float copy, log-softmax and gradient, each a pass through
main memory. Here the model runs with its output head bypassed (``completion_hidden``: the
hidden states at the trained positions only), and :func:`chunked` applies the head and a loss
to ``rows`` positions at a time, keeping only the loss's outputs. The backward pass recomputes
each chunk's logits (one extra head matmul on the trained positions) and accumulates the
hidden-state and weight gradients chunk by chunk, so the peak is one chunk's logits. A plain
cross-entropy (SFT, REDI) goes by slices of the vocabulary instead (:func:`token_logprobs`),
which writes each row of the weight gradient once. Logits up to :data:`FULL_LOGITS_UP_TO`
are built whole, as before: below that the chunks measured slower.

The loss must add up over positions (``fn(logits[a:b], slice(a, b))`` summed over chunks is the
whole), which every per-token loss here does: cross-entropy sums, per-sequence log-prob sums,
and the distillation losses' per-token means times their token counts. The head runs in the
autocast dtype as it does inside the model. Models whose head is more than a plain linear
layer (logit soft-capping or scaling), or whose weights are sharded, keep the model's own head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from ..scoring import completion_logits

CHUNK_BYTES = 16 << 20  # fp32 logits of one chunk: ~85 positions of a 49k vocabulary, inside a 32 MiB L3
# Up to this many bytes of fp32 logits the head runs whole, as the model's own would: on 2 CPU cores the
# chunked head and cross-entropy took 1.5x (vocabulary slices) to 2.1x (position chunks) the whole head's
# time for batches of ~190 positions of SmolLM2 (bf16, `benchmarks/packing.py --head-only`; the chunks
# recompute the logits and, by positions, add up the weight gradient once per chunk), so chunks pay only
# where the logits would crowd memory. 0: always chunked.
FULL_LOGITS_UP_TO = 64 << 20


def whole(rows: Any, head: Any) -> bool:
    """Whether the logits of ``rows`` positions are small enough to build at once (:data:`FULL_LOGITS_UP_TO`)."""
    return rows.shape[0] * head.weight.shape[0] * 4 <= FULL_LOGITS_UP_TO


def chunk_rows(vocab: int) -> int:
    """Positions per chunk for a vocabulary of ``vocab`` (at least 8)."""
    return max(8, CHUNK_BYTES // (4 * vocab))


def plain_head(model: Any) -> Any:
    """The output head as a plain ``nn.Linear`` that alone turns hidden states into logits, else ``None``."""
    inner = getattr(model, "module", model)  # DDP
    try:
        head = inner.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if type(head) is not torch.nn.Linear or _sharded(model, head.weight):
        return None  # LoRA on the head, a custom projection, or weights only whole inside the model's forward
    config = getattr(inner, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for scale in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                  "logits_scaling"):
        if getattr(text, scale, None) is not None:
            return None
    return head


def _sharded(model: Any, weight: Any) -> bool:
    """FSDP (1: a wrapped root; 2: DTensor parameters) or DeepSpeed ZeRO-3 (partitioned parameters)."""
    if hasattr(model, "_fsdp_wrapped_module") or hasattr(weight, "ds_id"):
        return True
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return False
    return isinstance(weight, DTensor)


def _identity(x: Any) -> Any:
    return x


@contextmanager
def bypassed(head: Any) -> Iterator[None]:
    """``head`` returns its input while inside (the same function object each time: a compiled
    model is not recompiled for it)."""
    head.forward = _identity
    try:
        yield
    finally:
        del head.forward


def completion_hidden(model: Any, input_ids: Any, attention_mask: Any, positions: Any) -> tuple[Any, Any]:
    """``(rows, head)``: the final hidden states ``[N, H]`` at ``positions`` (``[B, T]`` bool) and
    the head to apply (:func:`chunked`); where the head cannot be split off (:func:`plain_head`),
    the logits ``[N, V]`` and ``None``."""
    head = plain_head(model)
    if head is None:
        return completion_logits(model, input_ids, attention_mask, positions), None
    with bypassed(head):
        return completion_logits(model, input_ids, attention_mask, positions), head


class _ChunkedHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, fn, rows):
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        total = None
        with torch.no_grad(), torch.autocast(device, enabled=False):
            w = weight.to(dtype)  # cast once (as autocast would), kept for the backward pass
            b = None if bias is None else bias.to(dtype)
            for a in range(0, max(hidden.shape[0], 1), rows):
                part = fn(F.linear(hidden[a:a + rows].to(dtype), w, b), slice(a, a + rows))
                total = part if total is None else total + part
        ctx.fn, ctx.rows, ctx.device, ctx.cast = fn, rows, device, (w, b)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(hidden)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        (hidden,) = ctx.saved_tensors
        w, b = ctx.cast
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        gh = torch.zeros_like(hidden) if need_h else None
        gw = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if need_w else None
        gb = torch.zeros(b.shape, dtype=torch.float32, device=b.device) if need_b else None
        with torch.autocast(ctx.device, enabled=False):
            for a in range(0, hidden.shape[0], ctx.rows):
                h = hidden[a:a + ctx.rows].to(w.dtype)
                with torch.enable_grad():  # the chunk's logits again, and the loss's gradient in them
                    z = F.linear(h, w, b).requires_grad_()
                    (gz,) = torch.autograd.grad(ctx.fn(z, slice(a, a + ctx.rows)), z, grad_out)
                if need_h:
                    gh[a:a + ctx.rows] = (gz @ w).to(gh.dtype)
                if need_w:
                    gw.add_(gz.t() @ h)
                if need_b:
                    gb.add_(gz.sum(0))
        ctx.cast = None
        w_dtype, b_dtype = ctx.dtypes
        return gh, None if gw is None else gw.to(w_dtype), None if gb is None else gb.to(b_dtype), None, None


def chunked(hidden: Any, head: Any, fn: Callable[[Any, slice], Any], rows: int | None = None) -> Any:
    """``sum over chunks of fn(head(hidden[a:b]), slice(a, b))``: a loss over the positions of
    ``hidden`` ``[N, H]``, differentiable in ``hidden`` and the head's weights, with the logits of
    one chunk of ``rows`` positions alive at a time (:func:`chunk_rows` by default)."""
    rows = rows or chunk_rows(head.weight.shape[0])
    return _ChunkedHead.apply(hidden, head.weight, head.bias, fn, rows)


class _TokenLogProbs(torch.autograd.Function):
    """``log softmax(h @ W.T + b)[target]`` per position, over slices of the vocabulary: each
    slice's logits for every position (a cache-sized block), an online log-sum-exp across slices;
    the backward pass recomputes each slice and writes its rows of the weight gradient once."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, cols):
        device = hidden.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        n = hidden.shape[0]
        with torch.no_grad(), torch.autocast(device, enabled=False):
            w = weight.to(dtype)
            b = None if bias is None else bias.to(dtype)
            h = hidden.to(dtype)
            peak = torch.full((n,), -torch.inf, device=hidden.device)
            total = torch.zeros(n, device=hidden.device)
            picked = torch.zeros(n, device=hidden.device)
            for a in range(0, w.shape[0], cols):
                z = F.linear(h, w[a:a + cols], None if b is None else b[a:a + cols]).float()
                new_peak = torch.maximum(peak, z.amax(-1))
                total = total * (peak - new_peak).exp() + (z - new_peak[:, None]).exp().sum(-1)
                peak = new_peak
                inside = (targets >= a) & (targets < a + cols)
                picked = torch.where(inside, z.gather(-1, (targets - a).clamp(0, z.shape[1] - 1)[:, None])[:, 0],
                                     picked)
            lse = peak + total.log()
        ctx.save_for_backward(hidden, targets, lse)
        ctx.cast, ctx.cols, ctx.device = (w, b), cols, device
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        return picked - lse

    @staticmethod
    def backward(ctx, grad_out):
        hidden, targets, lse = ctx.saved_tensors
        (w, b), cols = ctx.cast, ctx.cols
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        h = hidden.to(w.dtype)
        g = grad_out.float()[:, None]
        gh = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device) if need_h else None
        gw = torch.empty(w.shape, dtype=torch.float32, device=w.device) if need_w else None
        gb = torch.empty(w.shape[0], dtype=torch.float32, device=w.device) if need_b else None
        rows = torch.arange(h.shape[0], device=h.device)
        with torch.no_grad(), torch.autocast(ctx.device, enabled=False):
            for a in range(0, w.shape[0], cols):
                z = F.linear(h, w[a:a + cols], None if b is None else b[a:a + cols]).float()
                gz = (z - lse[:, None]).exp_().mul_(-g)  # d(logp_target)/dz = onehot - softmax
                inside = (targets >= a) & (targets < a + cols)
                gz[rows[inside], targets[inside] - a] += g[inside, 0]
                gz = gz.to(w.dtype)
                if need_h:
                    gh.add_(gz @ w[a:a + cols])
                if need_w:
                    gw[a:a + cols] = gz.t() @ h
                if need_b:
                    gb[a:a + cols] = gz.float().sum(0)
        ctx.cast = None
        w_dtype, b_dtype = ctx.dtypes
        return (None if gh is None else gh.to(hidden.dtype), None if gw is None else gw.to(w_dtype),
                None if gb is None else gb.to(b_dtype), None, None)


def vocab_cols(positions: int) -> int:
    """Vocabulary columns per slice so that a slice's fp32 logits for ``positions`` rows fit ``CHUNK_BYTES``."""
    return max(256, CHUNK_BYTES // (4 * max(positions, 1)))


def token_logprobs(rows: Any, head: Any, targets: Any) -> Any:
    """Each position's log-probability of its target ``[N]``, from :func:`completion_hidden`'s
    ``(rows, head)``: the cross-entropy of SFT and REDI without the ``[N, V]`` logits (slices of
    the vocabulary, :class:`_TokenLogProbs`), or from the logits where the model applied its head."""
    if head is None or whole(rows, head):
        return -F.cross_entropy((rows if head is None else head(rows)).float(), targets, reduction="none")
    return _TokenLogProbs.apply(rows, head.weight, head.bias, targets, vocab_cols(rows.shape[0]))


def loss_over(rows: Any, head: Any, fn: Callable[[Any, slice], Any]) -> Any:
    """``fn`` over every position of :func:`completion_hidden`'s ``(rows, head)``: chunked through
    the head (:func:`chunked`), or on the logits at once where the model applied its own head."""
    if head is None or whole(rows, head):
        return fn(rows if head is None else head(rows), slice(None))
    return chunked(rows, head, fn)
