"""What the preference objectives (``redi.py``, ``dpo.py``, ``simpo.py``) share: reading
pairs, tokenising them, completion log-probabilities, the chosen-rejected margin, and one
``run`` (load the student, train, merge LoRA, save, loss log, manifest, through :mod:`.base`)
that each objective calls with a function building its trainer.

Pairs come from ``curate/pairs.py``. The student is normally an SFT checkpoint folder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..records import PreferenceExample
from . import base
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


def tokenize_pair(tok, pair: PreferenceExample, path: Any = "<pairs>", line: int | None = None
                  ) -> dict[str, list[int]]:
    """Prompt, chosen and rejected token ids, split as every objective splits a conversation
    (:func:`.base.encode_pair`; a template that cannot be split is an :class:`InputError`)."""
    prompt, chosen = base.encode_pair(tok, pair.prompt, pair.chosen, path=path, line=line, what="chosen: ")
    _, rejected = base.encode_pair(tok, pair.prompt, pair.rejected, path=path, line=line, what="rejected: ")
    n = len(prompt)
    return {"prompt_ids": prompt, "chosen_ids": chosen[n:], "rejected_ids": rejected[n:]}


def tokenize_pairs(tok, pairs: list[PreferenceExample], max_length: int, path: Any = "<pairs>"
                   ) -> list[dict[str, list[int]]]:
    """Tokenised pairs, leaving out those whose prompt alone fills ``max_length``."""
    feats = [tokenize_pair(tok, p, path, i) for i, p in enumerate(pairs, 1)]
    out = [f for f in feats if len(f["prompt_ids"]) < max_length]
    if len(out) < len(pairs):
        log.warning("%d of %d pairs have a prompt of >= %d tokens and are left out", len(pairs) - len(out),
                    len(pairs), max_length)
    return out


def pair_features(tok, pairs: list[PreferenceExample], max_length: int, path: Any = "<pairs>"
                  ) -> list[dict[str, list[int]]]:
    """:func:`tokenize_pairs` for a trainer of ours: refused when no pair is left."""
    features = tokenize_pairs(tok, pairs, max_length, path)
    if not features:
        raise ConfigError(f"every pair's prompt is >= train.max_length = {max_length} tokens; raise it")
    return features


def reward_parts(chosen, rejected) -> dict[str, Any]:
    """The logged parts of a pairwise reward (per-pair tensors, detached), named as TRL logs them."""
    return {"rewards/chosen": chosen.mean(), "rewards/rejected": rejected.mean(),
            "rewards/margins": (chosen - rejected).mean(), "rewards/accuracies": (chosen > rejected).float().mean()}


def collate(features: list[dict[str, list[int]]], pad_id: int, max_length: int) -> dict[str, Any]:
    """Rows ``0..B-1`` are prompt+chosen and rows ``B..2B-1`` prompt+rejected, right-padded and cut
    to ``max_length`` (the end of a long completion is dropped). ``completion_mask`` marks completion tokens."""
    import torch

    rows = []
    for key in ("chosen_ids", "rejected_ids"):
        for f in features:
            prompt, completion = f["prompt_ids"], f[key]
            rows.append({"input_ids": torch.tensor(prompt + completion, dtype=torch.long)[:max_length],
                         "completion_mask": torch.tensor([0] * len(prompt) + [1] * len(completion))[:max_length]})
    return base.pad_batch(rows, {"input_ids": pad_id, "completion_mask": 0})


def completion_logps(model, batch: dict[str, Any]):
    """Per row: the summed log-probability of the completion tokens, and their number. Only the
    completion positions go through the LM head, a chunk at a time (:mod:`.lean_head`)."""
    import torch

    ids = batch["input_ids"]
    keep = torch.zeros_like(ids, dtype=torch.bool)
    keep[:, :-1] = batch["completion_mask"][:, 1:].bool()  # the logits at p score the token at p + 1
    from . import lean_head  # imports torch: only when training, not when a finished run is reused
    rows, head = lean_head.completion_hidden(model, ids, batch["attention_mask"], keep)
    logp = lean_head.token_logprobs(rows, head, ids[:, 1:][keep[:, :-1]])
    return logp.new_zeros(ids.shape[0]).index_add(0, keep.nonzero()[:, 0], logp), keep.sum(-1)


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


def pairs_dataset(pairs: list[PreferenceExample]):
    """TRL's conversational preference format (``prompt``/``chosen``/``rejected`` messages)."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])


# build(model, tokenizer, pairs, *, device, use_bf16, out_dir, path) -> a transformers.Trainer;
# ``path`` (the pairs file) is for error messages
BuildTrainer = Callable[..., Any]


def run(method: str, cfg: TrainConfig, method_cfg: Any, pairs_path: str | Path, out_dir: str | Path,
        build: BuildTrainer) -> dict:
    """Train ``cfg.student`` on the pairs with the trainer ``build`` returns; save ``out_dir/model``,
    ``loss.jsonl`` and the manifest. A finished run with the same config and inputs is reused."""
    ref = models.resolve(cfg.student)
    config = {"train": dataclasses.asdict(cfg), method: dataclasses.asdict(method_cfg), "student": ref.identity}

    def train() -> base.TrainResult:
        pairs = load_pairs(pairs_path)
        tok = models.load_tokenizer(ref.path, trust_remote_code=cfg.trust_remote_code)
        report = base.log_report(preflight(tok, example={"prompt": pairs[0].prompt, "completion": pairs[0].chosen}))
        model, device, use_bf16 = base.load_student(cfg, ref.path)
        fast = base.speedups(model, cfg)
        trainer = build(model, tok, pairs, device=device, use_bf16=use_bf16, out_dir=Path(out_dir), path=pairs_path)
        model, result, history = base.fit(trainer, cfg, out_dir)
        info = {"n_pairs": len(pairs), "student": ref.identity, "bf16": use_bf16, "preflight": report.to_dict(), **fast,
                "trainer": f"{type(trainer).__module__.split('.')[0]}.{type(trainer).__name__}"}  # ours or TRL's
        if getattr(trainer, "reference_seconds", None) is not None:  # dpo's own trainer: the reference scored once
            info["reference_seconds"] = trainer.reference_seconds
        return model, tok, result, history, info

    return base.cached_run(out_dir, method, config, [pairs_path], train)
