"""DPO on correct-vs-incorrect trace pairs, through TRL's ``DPOTrainer``.

The reference model is a frozen copy of the student as it starts (normally the SFT checkpoint),
loaded safetensors-only like the student; with LoRA, TRL uses the student with the adapter
disabled instead, and no copy is loaded. Pairs are TRL's conversational preference format,
so they go to TRL unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import models
from ..config import TrainConfig
from ..errors import ConfigError
from . import base, preference

# DPOTrainer's loss types in trl 1.16 (DPOConfig.loss_type)
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


@dataclass
class DPOObjectiveConfig:
    """DPO's own knobs; batch size, learning rate (DPO wants a small one, ~1e-6 to 5e-6 for a
    full fine-tune), epochs and LoRA come from ``TrainConfig``."""

    beta: float = 0.1  # strength of the pull towards the reference model (higher: stay closer)
    loss_type: str = "sigmoid"  # one of LOSS_TYPES; sigmoid is the DPO paper's loss

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"dpo.beta = {self.beta!r} must be > 0")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"dpo.loss_type = {self.loss_type!r} is not one of: {', '.join(LOSS_TYPES)}")


def build_trainer(dpo_cfg: DPOObjectiveConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str,
                  use_bf16: bool, out_dir: Path, path: Any = None):
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
