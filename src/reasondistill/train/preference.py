"""What the preference objectives (``redi.py``, ``dpo.py``, ``simpo.py``) share: reading
pairs, tokenising them, completion log-probabilities, the chosen-rejected margin, and one
``run`` skeleton (load the student, train, merge LoRA, save, loss log, manifest) that each
objective calls with a function building its trainer.

Pairs come from ``curate/pairs.py``. The student is normally an SFT checkpoint folder.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import TrainConfig
from ..records import PreferenceExample
from . import common
from ..errors import InputError
from . import sft
from .preflight import preflight

log = logging.getLogger(__name__)


def load_pairs(path: str | Path) -> list[PreferenceExample]:
    pairs = io.read_records(path, PreferenceExample)
    for i, pair in enumerate(pairs, 1):
        for name in ("chosen", "rejected"):
            msgs = getattr(pair, name)
            if not msgs or not msgs[-1].get("content", "").strip():
                raise InputError("empty completion", file=path, line=i, field=name)
    return pairs


# ---------------------------------------------------------------------------
# tokens and log-probabilities


def _chat_ids(tok, messages: list[dict[str, str]], **kwargs) -> list[int]:
    return list(tok.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def tokenize_pair(tok, pair: PreferenceExample) -> dict[str, list[int]]:
    """Prompt, chosen and rejected token ids. The completion starts where the templated prompt
    (with the generation prompt) and the templated conversation diverge, as in TRL's DPO."""
    prompt = _chat_ids(tok, pair.prompt, add_generation_prompt=True)
    chosen = _chat_ids(tok, pair.prompt + pair.chosen)
    rejected = _chat_ids(tok, pair.prompt + pair.rejected)
    n = 0
    while n < len(prompt) and n < min(len(chosen), len(rejected)) and prompt[n] == chosen[n] == rejected[n]:
        n += 1
    return {"prompt_ids": prompt[:n], "chosen_ids": chosen[n:], "rejected_ids": rejected[n:]}


def tokenize_pairs(tok, pairs: list[PreferenceExample], max_length: int) -> list[dict[str, list[int]]]:
    """Tokenised pairs, leaving out those whose prompt alone fills ``max_length``."""
    out = [f for f in (tokenize_pair(tok, p) for p in pairs) if len(f["prompt_ids"]) < max_length]
    if len(out) < len(pairs):
        log.warning("%d of %d pairs have a prompt of >= %d tokens and are left out", len(pairs) - len(out),
                    len(pairs), max_length)
    return out


def collate(features: list[dict[str, list[int]]], pad_id: int, max_length: int) -> dict[str, Any]:
    """Rows ``0..B-1`` are prompt+chosen and rows ``B..2B-1`` prompt+rejected, right-padded and cut
    to ``max_length`` (the end of a long completion is dropped). ``completion_mask`` marks completion tokens."""
    import torch

    rows = [(f["prompt_ids"], f[key]) for key in ("chosen_ids", "rejected_ids") for f in features]
    width = min(max_length, max(len(p) + len(c) for p, c in rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt, completion) in enumerate(rows):
        ids = (prompt + completion)[:width]
        input_ids[i, :len(ids)] = torch.tensor(ids)
        attention_mask[i, :len(ids)] = 1
        completion_mask[i, len(prompt):len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask}


def completion_logps(model, batch: dict[str, Any]):
    """Per row: the summed log-probability of the completion tokens, and their number."""
    from trl.trainer.utils import selective_log_softmax

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    mask = batch["completion_mask"][:, 1:]
    logps = selective_log_softmax(logits[:, :-1], batch["input_ids"][:, 1:])
    return (logps * mask).sum(-1), mask.sum(-1)


def pair_logps(model, tok, pairs: list[PreferenceExample], *, max_length: int = 512,
               batch_size: int = 8) -> dict[str, float]:
    """Mean per-token log-likelihood of chosen and rejected completions, and the mean per-pair
    ``margin`` = logp(chosen)/|chosen| - logp(rejected)/|rejected|. Diagnostics; no gradients."""
    import torch

    feats = tokenize_pairs(tok, pairs, max_length)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen = rejected = 0.0
    with torch.no_grad():
        for i in range(0, len(feats), batch_size):
            batch = collate(feats[i:i + batch_size], tok.pad_token_id, max_length)
            sums, lengths = completion_logps(model, {k: v.to(device) for k, v in batch.items()})
            c, r = (sums / lengths.clamp(min=1)).float().chunk(2)
            chosen, rejected = chosen + c.sum().item(), rejected + r.sum().item()
    model.train(was_training)
    n = max(len(feats), 1)
    return {"chosen": chosen / n, "rejected": rejected / n, "margin": (chosen - rejected) / n}


# ---------------------------------------------------------------------------
# the run skeleton


# build(model, tokenizer, pairs, peft_config, args_kwargs) -> a transformers.Trainer
BuildTrainer = Callable[..., Any]


def run(method: str, cfg: TrainConfig, method_cfg: Any, pairs_path: str | Path, out_dir: str | Path,
        build: BuildTrainer) -> dict:
    """Train ``cfg.student`` on the pairs with the trainer ``build`` returns; save ``out_dir/model``,
    ``loss.jsonl`` and the manifest. A finished run with the same config and inputs is reused."""
    out_dir = Path(out_dir)
    ref = models.resolve(cfg.student)
    config = {"train": dataclasses.asdict(cfg), method: dataclasses.asdict(method_cfg), "student": ref.identity}
    inputs = io.hash_inputs([pairs_path])
    if (done := io.completed_manifest(out_dir, config, inputs)) is not None:
        log.info("%s: %s is up to date, reusing it", method, out_dir)
        return done
    started = time.time()
    pairs = load_pairs(pairs_path)

    tok = models.load_tokenizer(ref.path, trust_remote_code=cfg.trust_remote_code)
    report = preflight(tok, example={"prompt": pairs[0].prompt, "completion": pairs[0].chosen})
    for warning in report.warnings:
        log.warning("preflight: %s", warning)
    device, use_bf16 = common.precision(cfg)
    model = models.load_model(ref.path, dtype="float32", device=device, trust_remote_code=cfg.trust_remote_code)
    model.train()
    trainer = build(model, tok, pairs, common.lora_config(cfg), common.training_kwargs(cfg, out_dir, use_bf16, device))
    result = trainer.train()
    trained = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    path = sft.save_checkpoint(trained.eval(), tok, out_dir / sft.MODEL_DIR)
    io.write_jsonl(out_dir / "loss.jsonl", history)
    losses = [h["loss"] for h in history]
    outputs = {
        "files": ["loss.jsonl"],
        "model_dir": str(path),
        "method": method,
        "n_pairs": len(pairs),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "student": ref.identity,
        "bf16": use_bf16,
        **common.dtype_record(config["train"]),
        "preflight": report.to_dict(),
    }
    return io.write_manifest(out_dir, stage="train", config=config, inputs=inputs, outputs=outputs,
                             started=started)
