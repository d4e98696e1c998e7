"""DPO on correct-vs-incorrect trace pairs.

The reference is the student as it starts (normally the SFT checkpoint). With the sigmoid loss
(the DPO paper's, the default) our own trainer runs: the reference log-probabilities are the
starting student's, so it scores every pair once before the first step, with the student itself
(no second model in memory, no reference forward per step), and each step scores only the
completion positions through the LM head (:mod:`.lean_head`). The other loss types, or
``engine: trl``, go to TRL's ``DPOTrainer``, which copies the student as its frozen reference
(safetensors-only, like the student; with LoRA it disables the adapter instead) and scores it
every step. Pairs are TRL's conversational preference format, so they go to TRL unchanged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import models
from ..config import TrainConfig
from ..errors import ConfigError
from . import base, preference

log = logging.getLogger(__name__)
# DPOTrainer's loss types in trl 1.16 (DPOConfig.loss_type)
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
OWN_LOSS_TYPES = ("sigmoid",)  # what our own trainer computes; the rest are TRL's
ENGINES = ("auto", "own", "trl")  # auto: our own trainer for OWN_LOSS_TYPES, else TRL's


@dataclass
class DPOObjectiveConfig:
    """DPO's own knobs; batch size, learning rate (DPO wants a small one, ~1e-6 to 5e-6 for a
    full fine-tune), epochs and LoRA come from ``TrainConfig``."""

    beta: float = 0.1  # strength of the pull towards the reference model (higher: stay closer)
    loss_type: str = "sigmoid"  # one of LOSS_TYPES; sigmoid is the DPO paper's loss
    engine: str = "auto"  # one of ENGINES: own (sigmoid only; reference scored once), trl (DPOTrainer)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"dpo.beta = {self.beta!r} must be > 0")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"dpo.loss_type = {self.loss_type!r} is not one of: {', '.join(LOSS_TYPES)}")
        if self.engine not in ENGINES:
            raise ConfigError(f"dpo.engine = {self.engine!r} is not one of: {', '.join(ENGINES)}")
        if self.engine == "own" and self.loss_type not in OWN_LOSS_TYPES:
            raise ConfigError(f"dpo.engine = own computes loss_type {', '.join(OWN_LOSS_TYPES)} only, got "
                              f"{self.loss_type!r}; use engine: trl (or auto) for TRL's DPOTrainer")

    @property
    def own(self) -> bool:
        """Whether our own trainer runs (else TRL's DPOTrainer)."""
        return self.engine == "own" or (self.engine == "auto" and self.loss_type in OWN_LOSS_TYPES)


def _trainer_class():
    from transformers import Trainer

    from .losses.dpo import dpo_sigmoid_loss

    class DPOTrainer(base.LoggedParts, Trainer):
        """``transformers.Trainer`` with DPO's sigmoid loss against reference log-probabilities that
        come with each pair (``ref_logps``: chosen rows then rejected rows, as the batch)."""

        def __init__(self, *args, beta: float, reference_seconds: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.beta = beta
            self.reference_seconds = reference_seconds

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ref = inputs.pop("ref_logps")
            sums, _ = preference.completion_logps(model, inputs)
            chosen, rejected = sums.float().chunk(2)
            ref_chosen, ref_rejected = ref.chunk(2)
            loss, rc, rr = dpo_sigmoid_loss(chosen, rejected, ref_chosen, ref_rejected, beta=self.beta)
            self.record(**preference.reward_parts(rc, rr))
            return (loss, {}) if return_outputs else loss

    return DPOTrainer


def reference_logps(model, features: list[dict], pad_id: int, max_length: int, *, use_bf16: bool,
                    batch_size: int = 16) -> list[tuple[float, float]]:
    """``(chosen, rejected)`` summed completion log-probabilities of every pair under ``model`` as it
    is now, in eval mode without gradients, at the precision training runs in."""
    import contextlib

    import torch

    device = next(model.parameters()).device
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext())
    was_training = model.training
    model.eval()
    out: list[tuple[float, float]] = []
    try:
        with torch.no_grad(), autocast:
            for i in range(0, len(features), batch_size):
                batch = preference.collate(features[i:i + batch_size], pad_id, max_length)
                sums, _ = preference.completion_logps(model, {k: v.to(device) for k, v in batch.items()})
                chosen, rejected = sums.float().cpu().chunk(2)
                out.extend(zip(chosen.tolist(), rejected.tolist()))
    finally:
        model.train(was_training)
    return out


def collate_with_reference(features: list[dict], pad_id: int, max_length: int) -> dict[str, Any]:
    """:func:`preference.collate`, plus ``ref_logps`` in the same row order (chosen rows, then rejected)."""
    import torch

    batch = preference.collate(features, pad_id, max_length)
    batch["ref_logps"] = torch.tensor([f["ref_chosen"] for f in features] + [f["ref_rejected"] for f in features],
                                      dtype=torch.float32)
    return batch


def build_own_trainer(dpo_cfg: DPOObjectiveConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str,
                      use_bf16: bool, out_dir: Path, path: Any = None):
    """Our trainer, after scoring every pair once with the starting student (the reference)."""
    features = preference.pair_features(tok, pairs, train_cfg.max_length, path)
    started = time.perf_counter()
    refs = reference_logps(model, features, tok.pad_token_id, train_cfg.max_length, use_bf16=use_bf16)
    seconds = time.perf_counter() - started
    log.info("dpo: reference log-probabilities of %d pairs from the starting student in %.1f s", len(features),
             seconds)
    features = [{**f, "ref_chosen": c, "ref_rejected": r} for f, (c, r) in zip(features, refs)]
    collator = partial(collate_with_reference, pad_id=tok.pad_token_id, max_length=train_cfg.max_length)
    return base.trainer(_trainer_class(), train_cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                        train_dataset=features, data_collator=collator, beta=dpo_cfg.beta,
                        reference_seconds=round(seconds, 2))


def build_trainer(dpo_cfg: DPOObjectiveConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str,
                  use_bf16: bool, out_dir: Path, path: Any = None):
    if dpo_cfg.own:
        return build_own_trainer(dpo_cfg, train_cfg, model, tok, pairs, device=device, use_bf16=use_bf16,
                                 out_dir=out_dir, path=path)
    from trl import DPOConfig, DPOTrainer

    ref_model = None
    if not train_cfg.lora:
        ref_model = models.load_model(models.resolve(train_cfg.student).path, dtype="float32", device=device,
                                      trust_remote_code=train_cfg.trust_remote_code)
    args = base.training_args(train_cfg, out_dir, use_bf16, device, cls=DPOConfig, beta=dpo_cfg.beta,
                              loss_type=[dpo_cfg.loss_type], max_length=train_cfg.max_length)
    return DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=preference.pairs_dataset(pairs),
                      processing_class=tok, peft_config=base.lora_config(train_cfg))


def run(train_cfg: TrainConfig, dpo_cfg: DPOObjectiveConfig, pairs_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Train ``train_cfg.student`` with DPO on ``pairs_path``; save ``out_dir/model``, loss log, manifest."""
    dpo_cfg.validate()
    return preference.run("dpo", train_cfg, dpo_cfg, pairs_path, out_dir, partial(build_trainer, dpo_cfg, train_cfg))
