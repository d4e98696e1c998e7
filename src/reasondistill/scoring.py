"""How likely a model finds given completions: the per-token log-probabilities of each completion
under the model, with the prompt rendered by the model's chat template, in batched forward passes.

Student-aware curation (``curate.student_aware``) keeps the teacher traces the student already
finds likely ("In Their Own Words", RSD): a trace written in the student's own distribution is
learned with less forgetting than an equally correct one it finds surprising. The encoding is the
one supervised training uses (the prompt with the generation prompt is a token prefix of prompt +
completion, and every token after it, end-of-turn included, is scored), so a score is the mean
per-token log-likelihood SFT would start from. Shared here because curate is a stage and may not
import ``train``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import models

Messages = list[dict[str, str]]


def encode(tokenizer: Any, prompt: Messages, completion: Messages) -> tuple[list[int], list[int]]:
    """``(prompt_ids, full_ids)`` under the chat template; a ``ValueError`` when the rendered prompt
    is not a token prefix of the whole conversation (the completion could not be told apart)."""
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full_text, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template cannot be split into prompt and completion: its prompt tokens (with "
                         "the generation prompt) are not a prefix of prompt + completion")
    return prompt_ids, full_ids


def completion_logits(model: Any, input_ids: Any, attention_mask: Any, positions: Any) -> Any:
    """Logits ``[N, V]`` at the ``positions`` (``[B, T]`` bool) only, and nowhere else.

    The LM head is the costliest layer of a small model (SmolLM2-135M: 49k-row vocabulary, a fifth
    of the weights) and chat prompts are most of each sequence, so projecting only the completion
    positions roughly halves a training step on CPU. The selection goes through the model's own
    ``forward`` (``logits_to_keep`` as a boolean mask), so DDP, PEFT and logit soft-capping behave
    as usual; a model whose forward lacks it gets full logits, then indexed. Training
    (``train/base.py``) and scoring use this one function."""
    try:
        out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions, use_cache=False)
    except TypeError as e:  # no logits_to_keep on this architecture; any other TypeError is real
        if "logits_to_keep" not in str(e):
            raise
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    logits = out.logits
    if logits.dim() == 3 and logits.shape[:2] == positions.shape:
        return logits[positions]
    return logits.reshape(-1, logits.shape[-1])


def completion_logprobs(model: Any, tokenizer: Any, conversations: Sequence[tuple[Messages, Messages]], *,
                        batch_size: int = 8, max_length: int = 1024) -> list[list[float]]:
    """For each ``(prompt, completion)``, the model's log-probability of every completion token (in
    order; cut at ``max_length`` tokens of prompt + completion). Sequences are batched by length."""
    import torch

    encoded = [encode(tokenizer, p, c) for p, c in conversations]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out: list[list[float]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][1]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        seqs = [encoded[i][1][:max_length] for i in rows]
        firsts = [max(1, len(encoded[i][0])) for i in rows]  # each row's first scored (completion) token
        width = max(len(s) for s in seqs)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.bool)  # positions whose NEXT token is scored
        targets = []
        for b, (seq, first) in enumerate(zip(seqs, firsts)):
            ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[b, : len(seq)] = 1
            if first < len(seq):
                positions[b, first - 1: len(seq) - 1] = True
                targets.extend(seq[first:])
        if not targets:
            continue
        with torch.inference_mode():
            logits = completion_logits(model, ids.to(device), mask.to(device), positions.to(device))
            logp = torch.log_softmax(logits.float(), dim=-1)
            picked = logp.gather(-1, torch.tensor(targets, device=logp.device)[:, None])[:, 0].tolist()
        at = 0
        for b, i in enumerate(rows):
            n = int(positions[b].sum())
            out[i] = picked[at:at + n]
            at += n
    return out


def summarize(logprobs: Sequence[float], low_prob: float = 0.1) -> dict[str, float | int | None]:
    """``mean_logprob`` (per token), ``low_prob_share`` (share of tokens with probability below
    ``low_prob``) and ``tokens``; the first two are None for an empty completion."""
    n = len(logprobs)
    if not n:
        return {"mean_logprob": None, "low_prob_share": None, "tokens": 0}
    cut = math.log(low_prob)
    return {"mean_logprob": sum(logprobs) / n, "low_prob_share": sum(lp < cut for lp in logprobs) / n, "tokens": n}


@dataclass
class Scorer:
    """A loaded model and tokenizer to score completions with (:meth:`load`, then :meth:`score`)."""

    model: Any
    tokenizer: Any
    identity: str

    @classmethod
    def load(cls, spec: str, *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False) -> Scorer:
        ref = models.resolve(spec)
        tokenizer = models.load_tokenizer(ref.path, trust_remote_code=trust_remote_code)
        model = models.load_model(ref.path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, ref.identity)

    def score(self, conversations: Sequence[tuple[Messages, Messages]], *, batch_size: int = 8,
              max_length: int = 1024, low_prob: float = 0.1) -> list[dict[str, float | int | None]]:
        lps = completion_logprobs(self.model, self.tokenizer, conversations, batch_size=batch_size,
                                  max_length=max_length)
        return [summarize(lp, low_prob) for lp in lps]


__all__ = ["Scorer", "completion_logprobs", "encode", "summarize"]
