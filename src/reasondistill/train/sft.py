"""Supervised fine-tuning of the student on curated traces: cross-entropy on the completion.

TRL's ``SFTTrainer`` does this too, but on a CPU it scores every position of the batch,
prompt and padding included, through a tiled LM head that also computes entropy and
top-1 accuracy for its logs. Chat prompts are most of each sequence (SmolLM2's template
plus our CoT instruction: ~74 of ~96 tokens on chain_sum), so this file keeps the same
semantics (the chat template renders prompt and completion, loss on completion tokens
only, token-mean over the whole optimizer step, LoRA through PEFT) and projects only the
completion positions, a cache-sized chunk of them at a time (``lean_head``): 2.05-2.18x TRL's
tokens/s on 2 CPU cores (``benchmarks/sft_vs_trl.py``). Around it: GGUF-safe loading, the chat-template/EOS
preflight, a merged reloadable safetensors checkpoint, a loss log and a manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import InputError
from ..records import TrainExample
from . import base
from .base import IGNORE
from .preflight import preflight

log = logging.getLogger(__name__)


def tokenize(examples: list[TrainExample], tokenizer: Any, max_length: int,
             path: str | Path = "<train>") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``{"input_ids", "labels"}`` tensors per example (prompt positions ``IGNORE``), right-truncated
    to ``max_length``. An example whose prompt alone fills ``max_length`` teaches nothing: it is
    dropped and counted (``n_dropped_too_long``), as are truncated ones (``n_truncated``)."""
    features, n_truncated, n_dropped = [], 0, 0
    for line, ex in enumerate(examples, 1):
        prompt_ids, full_ids = base.encode_pair(tokenizer, ex.prompt, ex.completion, path=path, line=line)
        feature = base.supervised(prompt_ids, full_ids, max_length)
        if feature is None:
            n_dropped += 1
            continue
        n_truncated += len(full_ids) > max_length
        features.append(feature)
    if not features:
        raise InputError(f"every example's prompt is >= train.max_length={max_length} tokens; raise "
                         f"train.max_length", file=path, field="prompt")
    if n_dropped:
        log.warning("sft: %d example(s) whose prompt alone is >= train.max_length=%d tokens were dropped",
                    n_dropped, max_length)
    return features, {"n_truncated": n_truncated, "n_dropped_too_long": n_dropped}


class Collator:
    """Right-pads :func:`tokenize` features into a batch."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad = {"input_ids": pad_token_id, "labels": IGNORE}

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return base.pad_batch(features, self.pad)


def _trainer_class():
    from transformers import Trainer

    class CompletionTrainer(Trainer):
        """``Trainer`` whose loss is the token-mean cross-entropy on completion positions only."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # so Trainer counts the step's label tokens for us

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = base.next_token_targets(inputs["labels"])
            keep = targets != IGNORE
            from . import lean_head  # imports torch: only when training, not when a finished run is reused
            rows, head = lean_head.completion_hidden(model, inputs["input_ids"], inputs["attention_mask"], keep)
            loss_sum = -lean_head.token_logprobs(rows, head, targets[keep]).sum()
            loss = base.sum_to_mean(loss_sum, keep.sum(), num_items_in_batch, self)
            return (loss, {}) if return_outputs else loss

    return CompletionTrainer


def train(cfg: TrainConfig, examples: list[TrainExample], out_dir: Path, train_path: str | Path = "<train>"):
    """Fine-tune in memory. Returns ``(model, tokenizer, train_output, log_history, info)``;
    a LoRA model comes back merged into plain weights. Tokenization and the preflight run
    before the student's weights are loaded."""
    ref, tok = base.student_tokenizer(cfg)
    features, counts = tokenize(examples, tok, cfg.max_length, train_path)
    report = base.log_report(preflight(tok, example=examples[0]))
    model, device, use_bf16 = base.load_student(cfg, ref.path)
    fast = base.speedups(model, cfg)
    trainer = base.trainer(_trainer_class(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                           train_dataset=features, data_collator=Collator(tok.pad_token_id))
    model, result, history = base.fit(trainer, cfg, out_dir)
    info = {"n_examples": len(examples), "student": ref.identity, "bf16": use_bf16, "preflight": report.to_dict(),
            **counts, **fast}
    return model, tok, result, history, info


def run(cfg: TrainConfig, options: None, train_path: str | Path, out_dir: str | Path, *, context: Any = None) -> dict:
    """Fine-tune ``cfg.student`` on ``train_path`` and save ``out_dir/model`` (safetensors)."""
    return base.cached_run(out_dir, "sft", dataclasses.asdict(cfg), [train_path],
                           lambda: train(cfg, base.load_examples(train_path), Path(out_dir), train_path))
