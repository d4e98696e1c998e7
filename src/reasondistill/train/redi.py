"""REDI (Reinforcement Distillation, Xu et al. 2025): learn from correct AND incorrect teacher
traces, without a reference model. Normally run after an SFT stage, with ``train.student`` set
to that stage's checkpoint folder.

Each step scores the chosen (correct) and rejected (incorrect) completions of a batch of pairs
in one forward pass, loss on completion tokens only, and applies ``losses/redi.py``:
``-(1/|y+|) log p(y+) + alpha (1/|y-|) log p(y-)``. TRL has no REDI, so this subclasses
``transformers.Trainer`` directly; the rest (loading, LoRA, saving) is ``preference.run`` and :mod:`.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError
from . import base, preference
from .losses.redi import redi_loss


@dataclass
class REDIConfig:
    """REDI's own knob; batch size, learning rate, epochs and LoRA come from ``TrainConfig``."""

    alpha: float = 0.8  # weight of the push-down on incorrect traces, in [0, 1]; 0 is SFT on the correct ones

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.alpha, int | float) or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"redi.alpha = {self.alpha!r} is out of range: it must be in [0, 1] "
                              "(0: SFT on the correct traces only; 0.8: the REDI paper's default; above 1 the "
                              "incorrect traces are pushed down harder than the correct ones are pulled up, "
                              "which collapses training)")


def _trainer_class():
    from transformers import Trainer

    class REDITrainer(base.LoggedParts, Trainer):
        """``transformers.Trainer`` with the REDI loss over collated chosen/rejected rows."""

        def __init__(self, *args, alpha: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.alpha = alpha

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sums, lengths = preference.completion_logps(model, inputs)
            chosen, rejected = sums.chunk(2)
            chosen_len, rejected_len = lengths.chunk(2)
            loss = redi_loss(chosen, chosen_len, rejected, rejected_len, alpha=self.alpha)
            c, r = (sums / lengths.clamp(min=1)).detach().float().chunk(2)
            self.record(**{"logps/chosen": c.mean(), "logps/rejected": r.mean(), "logps/margin": (c - r).mean()})
            return (loss, {}) if return_outputs else loss

    return REDITrainer


def build_trainer(redi_cfg: REDIConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str, use_bf16: bool,
                  out_dir: Path, path: Any = None):
    features = preference.pair_features(tok, pairs, train_cfg.max_length, path)
    collator = partial(preference.collate, pad_id=tok.pad_token_id, max_length=train_cfg.max_length)
    return base.trainer(_trainer_class(), train_cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                        train_dataset=features, data_collator=collator, alpha=redi_cfg.alpha)


def run(train_cfg: TrainConfig, redi_cfg: REDIConfig, pairs_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Train ``train_cfg.student`` with REDI on ``pairs_path``; save ``out_dir/model``, loss log, manifest."""
    redi_cfg.validate()  # before anything is loaded, also when the field was set after construction
    return preference.run("redi", train_cfg, redi_cfg, pairs_path, out_dir, partial(build_trainer, redi_cfg, train_cfg))
