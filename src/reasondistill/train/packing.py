"""Padding-free batches: the student's transformer body never runs on padding.

The collators keep producing right-padded ``[B, T]`` batches (every loss, the token counter and
TRL's trainers read that layout). A forward pre-hook on the model's body (``LlamaModel`` inside
``LlamaForCausalLM``, under PEFT too) packs the rows' real tokens into as few rows as fit the
longest one (first-fit decreasing), with position ids restarting at every example and no
attention mask, so transformers' attention (sdpa, eager, flash, flex) keeps each example to
itself; a forward hook scatters the hidden states back to the padded layout, zeros at the
padding, before the LM head. sdpa and eager compute a dense product per row, masked, so rows of
width ``max(lengths)`` keep this never costlier than padding (fewer rows of the same width);
flash attention's variable-length kernels skip what crosses examples, so there every example
goes into one row.

Exact only where the attention implementation honours the restarting position ids:
:func:`packing_is_exact` checks that on the loaded model (a packed and an unpacked forward of
three short sequences must agree) before ``train.packing: auto`` turns it on. Off outside
training mode (generation, evaluation), and for any call that brings its own position ids,
cache or embeddings.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

MODES = ("auto", "true", "false")
PROBE_TOLERANCE = 1e-4  # fp32 hidden states of a packed vs a padded forward (typically ~1e-6)


def body(model: Any) -> Any:
    """The transformer body under the LM head (``model.model`` of a ``LlamaForCausalLM``), through PEFT."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(inner, getattr(inner, "base_model_prefix", "model"), None)


def plan(mask: Any, *, one_row: bool = False) -> dict[str, Any] | None:
    """How to pack a right-padded ``[B, T]`` attention mask: ``None`` when packing would not save
    a row (or the padding is not on the right); else the packed ``position_ids [R, W]`` and the
    flat indices moving each real token from ``[B * T]`` (``src``) to ``[R * W]`` (``dst``).
    ``one_row``: every example in one row, for attention that skips what crosses examples
    (flash attention's variable-length kernels) instead of masking a dense ``W x W`` product."""
    import torch

    if mask is None or mask.dim() != 2:
        return None
    lengths = mask.sum(-1)
    n_rows, width = mask.shape
    if not torch.equal(mask.bool(), torch.arange(width, device=mask.device)[None] < lengths[:, None]):
        return None  # not right-padded: leave it to the model
    lens = lengths.tolist()
    wide = sum(lens) if one_row else max(lens)
    rows: list[list[int]] = []  # first-fit decreasing into rows of the longest example's width
    room: list[int] = []
    for b in sorted(range(n_rows), key=lambda i: -lens[i]):
        fit = next((r for r, free in enumerate(room) if free >= lens[b]), None)
        if fit is None:
            rows.append([b])
            room.append(wide - lens[b])
        else:
            rows[fit].append(b)
            room[fit] -= lens[b]
    if len(rows) == n_rows or max(lens) == 0:
        return None
    pos = torch.zeros((len(rows), wide), dtype=torch.long)
    src, dst = [], []
    for r, members in enumerate(rows):
        at = 0
        for b in members:
            pos[r, at:at + lens[b]] = torch.arange(lens[b])
            src.append(torch.arange(lens[b]) + b * width)
            dst.append(torch.arange(lens[b]) + r * wide + at)
            at += lens[b]
        pos[r, at:] = torch.arange(wide - at)  # the row's filler: a sequence of its own, discarded
    dev = mask.device
    return {"shape": (n_rows, width), "position_ids": pos.to(dev), "src": torch.cat(src).to(dev),
            "dst": torch.cat(dst).to(dev)}


def _pack(module: Any, args: tuple, kwargs: dict[str, Any]):
    module._rd_pack = None
    if not (module.training or getattr(module, "_rd_pack_always", False)) or args:
        return None
    if any(kwargs.get(k) is not None for k in ("position_ids", "cache", "past_key_values", "inputs_embeds",
                                                  "cache_position")):
        return None
    ids = kwargs.get("input_ids")
    varlen = str(getattr(getattr(module, "config", None), "_attn_implementation", "")).startswith("flash")
    p = plan(kwargs.get("attention_mask"), one_row=varlen) if ids is not None else None
    if p is None:
        return None
    flat = ids.reshape(-1)
    packed = flat.new_zeros(p["position_ids"].numel())
    packed[p["dst"]] = flat[p["src"]]
    module._rd_pack = p
    return args, {**kwargs, "input_ids": packed.view_as(p["position_ids"]), "position_ids": p["position_ids"],
                  "attention_mask": None, "use_cache": False}


def _unpack(module: Any, args: tuple, kwargs: dict[str, Any], output: Any):
    p, module._rd_pack = getattr(module, "_rd_pack", None), None
    if p is None:
        return None
    hidden = output.last_hidden_state
    n_rows, width = p["shape"]
    flat = hidden.reshape(-1, hidden.shape[-1])
    out = flat.new_zeros((n_rows * width, hidden.shape[-1])).index_copy(0, p["src"], flat.index_select(0, p["dst"]))
    output.last_hidden_state = out.view(n_rows, width, -1)
    return output


def install(model: Any) -> list[Any]:
    """Pack every training forward of ``model`` from now on; returns the hook handles (empty when
    the model has no body to hook), whose ``remove()`` undoes it."""
    inner = body(model)
    if inner is None:
        return []
    return [inner.register_forward_pre_hook(_pack, with_kwargs=True),
            inner.register_forward_hook(_unpack, with_kwargs=True)]


def packing_is_exact(model: Any) -> bool:
    """Whether ``model`` gives packed sequences the hidden states it gives them padded: three short
    sequences (lengths 4, 2, 2: two share a packed row), no gradients, in eval mode (no dropout)."""
    import torch

    inner = body(model)
    hooks = install(model)
    if not hooks:
        return False
    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = (torch.arange(12).view(3, 4) * 7 + 3) % vocab
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    was = inner.training
    inner.eval()
    try:
        with torch.no_grad():
            padded = inner(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            inner._rd_pack_always = True
            packed = inner(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as e:  # refuses packed inputs: cannot pack
        log.info("packing probe failed: %s", e)
        return False
    finally:
        inner._rd_pack_always = False
        inner.train(was)
        for hook in hooks:
            hook.remove()
    keep = mask.bool().to(device)
    a, b = padded.last_hidden_state[keep].float(), packed.last_hidden_state[keep].float()
    return bool((a - b).abs().max() <= PROBE_TOLERANCE * max(1.0, float(a.abs().max())))


def enable(model: Any, mode: str) -> bool:
    """Pack ``model``'s training forwards as ``train.packing`` says (``auto``/``true``: where
    :func:`packing_is_exact`; ``false``: never). Returns whether it packs; ``true`` on a model
    that cannot pack warns and trains on padded batches."""
    if mode == "false":
        return False
    if packing_is_exact(model):
        install(model)
        return True
    (log.warning if mode == "true" else log.info)(
        "train.packing: this model's attention does not keep packed sequences apart; training on padded batches")
    return False
