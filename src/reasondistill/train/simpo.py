"""SimPO (Meng et al. 2024) on correct-vs-incorrect trace pairs: reference-free, with a
length-normalised implicit reward and a target margin,

    loss = -log sigmoid(beta * (logp(y+)/|y+| - logp(y-)/|y-|) - gamma).

trl 1.16 offers SimPO only as the experimental ``CPOTrainer`` with ``loss_type="simpo"`` and
``cpo_alpha=0`` (CPO's extra NLL term switched off); ``DPOTrainer`` has no reference-free
length-normalised loss. ``trl.experimental`` may change without deprecation, so the import is
checked here with a clear error.
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


@dataclass
class SimPOConfig:
    """SimPO's own knobs (the paper's defaults keep gamma / beta near 0.5); batch size, learning
    rate, epochs and LoRA come from ``TrainConfig``."""

    beta: float = 2.0  # scale of the length-normalised reward
    gamma: float = 1.0  # target reward margin between chosen and rejected, >= 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"simpo.beta = {self.beta!r} must be > 0")
        if not self.gamma >= 0:
            raise ConfigError(f"simpo.gamma = {self.gamma!r} must be >= 0")


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


def build_trainer(simpo_cfg: SimPOConfig, train_cfg: TrainConfig, model, tok, pairs, *, device: str,
                  use_bf16: bool, out_dir: Path, path: Any = None):
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
    _cpo()  # fail on a trl without it before anything is loaded
    return preference.run("simpo", train_cfg, simpo_cfg, pairs_path, out_dir,
                          partial(build_trainer, simpo_cfg, train_cfg))
