"""Supervised fine-tuning of the student on curated traces: cross-entropy on the completion.

TRL's ``SFTTrainer`` does this too, but on a CPU it scores every position of the batch,
prompt and padding included, through a tiled LM head that also computes entropy and
top-1 accuracy for its logs. Chat prompts are most of each sequence (SmolLM2's template
plus our CoT instruction: ~74 of ~96 tokens on chain_sum), so this file keeps the same
semantics (the chat template renders prompt and completion, loss on completion tokens
only, token-mean over the whole optimizer step, LoRA through PEFT) and projects only the
completion positions (``common.completion_logits``): 2.05-2.18x TRL's tokens/s on 2 CPU cores
(``benchmarks/sft_vs_trl.py``). Around it: GGUF-safe loading, the chat-template/EOS
preflight, a merged reloadable safetensors checkpoint, a loss log and a manifest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import TrainConfig
from ..errors import InputError
from ..records import TrainExample
from . import common
from .preflight import preflight

log = logging.getLogger(__name__)

MODEL_DIR = "model"
IGNORE = -100


def load_examples(path: str | Path) -> list[TrainExample]:
    examples = io.read_records(path, TrainExample)
    for i, ex in enumerate(examples, 1):
        if not ex.completion or not ex.completion[-1].get("content", "").strip():
            raise InputError("empty completion", file=path, line=i, field="completion")
    return examples


def tokenize(examples: list[TrainExample], tokenizer: Any, max_length: int,
             path: str | Path = "<train>") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``{"input_ids", "labels"}`` tensors per example (prompt positions ``IGNORE``), right-truncated
    to ``max_length``. An example whose prompt alone fills ``max_length`` teaches nothing: it is
    dropped and counted (``n_dropped_too_long``), as are truncated ones (``n_truncated``)."""
    import torch

    features, n_truncated, n_dropped = [], 0, 0
    for line, ex in enumerate(examples, 1):
        prompt_ids, full_ids = common.encode_pair(tokenizer, ex.prompt, ex.completion, path=path, line=line)
        n_prompt = len(prompt_ids)
        if n_prompt >= max_length:
            n_dropped += 1
            continue
        n_truncated += len(full_ids) > max_length
        seq = torch.tensor(full_ids[:max_length], dtype=torch.long)
        labels = seq.clone()
        labels[:n_prompt] = IGNORE
        features.append({"input_ids": seq, "labels": labels})
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
        return common.pad_batch(features, self.pad)


def _trainer_class():
    import torch.nn.functional as F
    from transformers import Trainer

    class CompletionTrainer(Trainer):
        """``Trainer`` whose loss is the token-mean cross-entropy on completion positions only."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # so Trainer counts the step's label tokens for us

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            targets = labels.new_full(labels.shape, IGNORE)  # targets[p]: the token logits at p predict
            targets[:, :-1] = labels[:, 1:]
            keep = targets != IGNORE
            logits = common.completion_logits(model, inputs["input_ids"], inputs["attention_mask"], keep)
            loss_sum = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
            loss = common.sum_to_mean(loss_sum, keep.sum(), num_items_in_batch, self)
            return (loss, logits) if return_outputs else loss

    return CompletionTrainer


def training_args(cfg: TrainConfig, out_dir: Path, use_bf16: bool, device: str):
    from transformers import TrainingArguments

    return TrainingArguments(**common.training_kwargs(cfg, out_dir, use_bf16, device),
                             remove_unused_columns=False, disable_tqdm=False)


def train(cfg: TrainConfig, examples: list[TrainExample], out_dir: Path, train_path: str | Path = "<train>"):
    """Fine-tune in memory. Returns ``(model, tokenizer, train_output, log_history, info)``;
    a LoRA model comes back merged into plain weights. Tokenization and the preflight run
    before the student's weights are loaded."""
    ref = models.resolve(cfg.student)
    tok = models.load_tokenizer(ref.path, trust_remote_code=cfg.trust_remote_code)
    features, counts = tokenize(examples, tok, cfg.max_length, train_path)
    report = preflight(tok, example=examples[0])
    for warning in report.warnings:
        log.warning("preflight: %s", warning)
    device, use_bf16 = common.precision(cfg)
    model = models.load_model(ref.path, dtype="float32", device=device, trust_remote_code=cfg.trust_remote_code)
    model.train()
    if cfg.lora:
        from peft import get_peft_model
        model = get_peft_model(model, common.lora_config(cfg))
    trainer = _trainer_class()(model=model, args=training_args(cfg, out_dir, use_bf16, device),
                               train_dataset=features, data_collator=Collator(tok.pad_token_id),
                               processing_class=tok)
    result = trainer.train()
    trained = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    info = {"student": ref.identity, "bf16": use_bf16, "preflight": report.to_dict(), **counts}
    return trained.eval(), tok, result, history, info


def run(cfg: TrainConfig, options: None, train_path: str | Path, out_dir: str | Path, *, context: Any = None) -> dict:
    """Fine-tune ``cfg.student`` on ``train_path`` and save ``out_dir/model`` (safetensors)."""
    out_dir = Path(out_dir)
    config = dataclasses.asdict(cfg)
    inputs = io.hash_inputs([train_path])
    done = io.completed_manifest(out_dir, config, inputs)
    if done:
        return done
    started = time.time()
    examples = load_examples(train_path)
    model, tok, result, history, info = train(cfg, examples, out_dir, train_path)
    return common.finish(out_dir, model, tok, result, history, n_examples=len(examples), config=config,
                         inputs=inputs, started=started, method="sft", outputs=info)


def save_checkpoint(model, tokenizer, path: Path) -> Path:
    """Save as an HF folder with safetensors, atomically (temp folder, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "reasondistill.json").write_text(json.dumps({"saved_at": time.time()}))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path
