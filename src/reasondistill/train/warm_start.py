"""``train.warm_start``: on-policy objectives start from an SFT checkpoint on the same teacher's traces.

An on-policy objective (GKD, KD+RL, GRPO, the negative-advantage control: ``on_policy`` in their
``OBJECTIVES`` row) trains on what the student samples. A student that cannot yet write the task's
rationales samples little a teacher can correct, so the seed papers start from SFT on the
teacher's traces: Thinking Machines' on-policy distillation loads an SFT checkpoint, and Lightning
OPD (arXiv 2604.13010) shows that the teacher of the SFT traces and of on-policy distillation must
be the same. ``warm_start: auto`` (the default) does that for on-policy objectives: an SFT pass on
the curated traces, with the run's own ``train`` settings (steps, batch, learning rate), into
``<train folder>/warm_start/``, whose checkpoint is then the student. ``none`` starts from
``train.student`` as given; ``sft`` warm-starts any objective but SFT itself.

``reasondistill run`` warm-starts on the run's curated traces; ``reasondistill train`` on ``--data``
where the objective trains on curated traces (gkd), else on ``--sft-data``; without either, ``auto``
starts from ``train.student`` (logged) and an explicit ``sft`` is a :class:`ConfigError`.
``reasondistill compare`` chains entries instead (``compare.py``: an SFT entry as the ``init``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from ..layout import FILES

log = logging.getLogger(__name__)

WARM_START_DIR = FILES["warm_start"][1]  # inside a train stage's folder


def resolve(cfg: TrainConfig) -> str:
    """``"sft"`` or ``"none"``: what ``cfg.warm_start`` means for ``cfg.method``."""
    from . import objective

    if cfg.method == "sft":
        return "none"  # SFT from an SFT pass is only a longer SFT
    if cfg.warm_start == "auto":
        return "sft" if objective(cfg.method).on_policy else "none"
    return cfg.warm_start


def sft_first(cfg: TrainConfig, traces: str | Path | None, folder: str | Path) -> TrainConfig:
    """``cfg``, starting from the checkpoint of an SFT pass on ``traces`` (curated ``train.jsonl``)
    trained into ``folder`` when its warm start is ``sft``; else ``cfg`` itself. A finished pass is
    reused, as every training run is."""
    from . import run_objective
    from .base import checkpoint_path

    if resolve(cfg) == "none":
        return cfg
    if traces is None or not Path(traces).is_file():
        if cfg.warm_start == "sft":
            raise ConfigError(f"train.warm_start: sft needs the curated traces to train SFT on first "
                              f"({traces or 'none given'}; `reasondistill train` takes them as --sft-data), "
                              f"or set train.warm_start=none")
        log.info("train.warm_start: no curated traces to warm-start %s from; training from %s as given",
                 cfg.method, cfg.student)
        return cfg
    log.info("train.warm_start: SFT on %s first (into %s); %s starts from its checkpoint", traces, folder, cfg.method)
    manifest = run_objective(dataclasses.replace(cfg, method="sft", objective={}, warm_start="none"), traces, folder)
    return dataclasses.replace(cfg, student=str(checkpoint_path(folder, manifest["outputs"])))

