"""SimPO (Meng et al. 2024) on correct-vs-incorrect trace pairs: reference-free, with a
length-normalised implicit reward and a target margin,

    loss = -log sigmoid(beta * (logp(y+)/|y+| - logp(y-)/|y-|) - gamma).

Our own trainer computes it by default (``engine: own``): the loss needs nothing but the two
completions' log-probabilities, which go through the lean LM head and are counted as trained tokens
like every other objective's. trl 1.16 offers SimPO only as the experimental ``CPOTrainer`` with
``loss_type="simpo"`` and ``cpo_alpha=0`` (CPO's extra NLL term switched off), which counts no
tokens; ``engine: trl`` runs it. ``trl.experimental`` may change without deprecation, so its import
is checked with a clear error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError
from . import base, preference


ENGINES = ("own", "trl")


@dataclass
class SimPOConfig:
    """SimPO's own knobs (the paper's defaults keep gamma / beta near 0.5); batch size, learning
    rate, epochs and LoRA come from ``TrainConfig``."""

    beta: float = 2.0  # scale of the length-normalised reward
    gamma: float = 1.0  # target reward margin between chosen and rejected, >= 0
    engine: str = "own"  # own (transformers Trainer, the lean head) | trl (trl.experimental CPOTrainer)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"simpo.beta = {self.beta!r} must be > 0")
        if not self.gamma >= 0:
            raise ConfigError(f"simpo.gamma = {self.gamma!r} must be >= 0")
        if self.engine not in ENGINES:
            raise ConfigError(f"simpo.engine = {self.engine!r} is not one of: {', '.join(ENGINES)}")


def _cpo():
    import trl
    try:
        from trl.import_utils import TRLExperimentalWarning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TRLExperimentalWarning)
            from trl.experimental.cpo import CPOConfig, CPOTrainer
    except ImportError as e:
        raise ConfigError(f"SimPO needs trl.experimental.cpo.CPOTrainer (trl 1.16 has it), which trl "
                          f"{trl.__version__} lacks ({e}); install trl==1.16 or use dpo/redi") from None
    return CPOConfig, CPOTrainer


def _trainer_class():
    from transformers import Trainer

    from .losses.simpo import simpo_loss

    class SimPOTrainer(base.LoggedParts, Trainer):
        """``transformers.Trainer`` with SimPO's loss over collated chosen/rejected rows."""

        def __init__(self, *args, beta: float, gamma: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.beta, self.gamma = beta, gamma

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sums, lengths = preference.completion_logps(model, inputs)
            chosen, rejected = sums.float().chunk(2)
            chosen_len, rejected_len = lengths.chunk(2)
            loss, rc, rr = simpo_loss(chosen, chosen_len, rejected, rejected_len, beta=self.beta, gamma=self.gamma)
            self.record(**preference.reward_parts(rc, rr))
            return (loss, {}) if return_outputs else loss

    return SimPOTrainer


def build_trainer(simpo_cfg: SimPOConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str,
                  use_bf16: bool, out_dir: Path, path: Any = None):
    if simpo_cfg.engine == "own":
        features = preference.pair_features(tok, pairs, train_cfg.max_length, path)
        collator = partial(preference.collate, pad_id=tok.pad_token_id, max_length=train_cfg.max_length)
        return base.trainer(_trainer_class(), train_cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                            train_dataset=features, data_collator=collator, beta=simpo_cfg.beta,
                            gamma=simpo_cfg.gamma)
    CPOConfig, CPOTrainer = _cpo()
    args = base.training_args(train_cfg, out_dir, use_bf16, device, cls=CPOConfig, loss_type="simpo",
                              cpo_alpha=0.0, beta=simpo_cfg.beta, simpo_gamma=simpo_cfg.gamma,
                              max_length=train_cfg.max_length, remove_unused_columns=False)
    return CPOTrainer(model=model, args=args, train_dataset=preference.pairs_dataset(pairs), processing_class=tok,
                      peft_config=base.lora_config(train_cfg))


def run(train_cfg: TrainConfig, simpo_cfg: SimPOConfig, pairs_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Train ``train_cfg.student`` with SimPO on ``pairs_path``; save ``out_dir/model``, loss log, manifest."""
    simpo_cfg.validate()
    if simpo_cfg.engine == "trl":
        _cpo()  # fail on a trl without it before anything is loaded
    return preference.run("simpo", train_cfg, simpo_cfg, pairs_path, out_dir,
                          partial(build_trainer, simpo_cfg, train_cfg))
