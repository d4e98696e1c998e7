"""Supervised fine-tuning of the student on curated traces, on top of TRL's SFTTrainer.

TRL already does the hard parts (chat templating of prompt-completion pairs, loss on
completion tokens only, LoRA through PEFT). This file adds what a pipeline needs
around it: loading our records, the GGUF-safe model loading, a merged and reloadable
safetensors checkpoint, a loss log and a manifest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

from .. import io, models
from ..config import TrainConfig
from ..errors import InputError
from ..records import TrainExample
from . import common

log = logging.getLogger(__name__)

MODEL_DIR = "model"


def load_examples(path: str | Path) -> list[TrainExample]:
    examples = io.read_records(path, TrainExample)
    for i, ex in enumerate(examples, 1):
        if not ex.completion or not ex.completion[-1].get("content", "").strip():
            raise InputError("empty completion", file=path, line=i, field="completion")
    return examples


def sft_args(cfg: TrainConfig, out_dir: Path, use_bf16: bool, device: str):
    from trl import SFTConfig

    return SFTConfig(**common.training_kwargs(cfg, out_dir, use_bf16, device),
                     max_length=cfg.max_length, completion_only_loss=True, disable_tqdm=False)


def train(cfg: TrainConfig, examples: list[TrainExample], out_dir: Path):
    """Fine-tune in memory. Returns ``(model, tokenizer, train_output, log_history)``;
    a LoRA model comes back merged into plain weights."""
    from datasets import Dataset
    from trl import SFTTrainer

    ref = models.resolve(cfg.student)
    tok = models.load_tokenizer(ref.path, trust_remote_code=cfg.trust_remote_code)
    device, use_bf16 = common.precision(cfg)
    model = models.load_model(ref.path, dtype="float32", device=device, trust_remote_code=cfg.trust_remote_code)
    model.train()
    peft_config = common.lora_config(cfg)
    ds = Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in examples])
    trainer = SFTTrainer(model=model, args=sft_args(cfg, out_dir, use_bf16, device), train_dataset=ds,
                         processing_class=tok, peft_config=peft_config)
    result = trainer.train()
    trained = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return trained.eval(), tok, result, history, {"student": ref.identity, "bf16": use_bf16}


def run(cfg: TrainConfig, train_path: str | Path, out_dir: str | Path) -> dict:
    """Fine-tune ``cfg.student`` on ``train_path`` and save ``out_dir/model`` (safetensors)."""
    out_dir = Path(out_dir)
    config = dataclasses.asdict(cfg)
    inputs = io.hash_inputs([train_path])
    done = io.completed_manifest(out_dir, config, inputs)
    if done:
        return done
    started = time.time()
    examples = load_examples(train_path)
    model, tok, result, history, info = train(cfg, examples, out_dir)
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
