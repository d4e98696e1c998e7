"""Stage 4, train: one objective per file, each with its config dataclass beside it.

``OBJECTIVES`` is the name table: objective -> (config class, run function, what its
``--data`` input is). Entries are lazy ``module:attr`` strings, so naming an objective
in a recipe imports nothing heavy, and a bad objective config fails before any model
is loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class Objective:
    config: str | None  # "module:Class" of the objective's own options; None: TrainConfig alone
    run: str  # "module:function"
    data: str  # what --data is: "curated" train.jsonl, preference "pairs", or "problems"
    needs_logprobs: bool = False


OBJECTIVES: dict[str, Objective] = {
    "sft": Objective(None, "reasondistill.train.sft:run", "curated"),
    "kd": Objective("reasondistill.train.kd_config:KDConfig", "reasondistill.train.kd:run", "curated",
                    needs_logprobs=True),
    "multitask": Objective("reasondistill.train.multitask:MultiTaskConfig", "reasondistill.train.multitask:run",
                           "curated"),
    "redi": Objective("reasondistill.train.redi:REDIConfig", "reasondistill.train.redi:run", "pairs"),
    "dpo": Objective("reasondistill.train.dpo:DPOObjectiveConfig", "reasondistill.train.dpo:run", "pairs"),
    "simpo": Objective("reasondistill.train.simpo:SimPOConfig", "reasondistill.train.simpo:run", "pairs"),
    "grpo": Objective("reasondistill.train.grpo:GRPOObjectiveConfig", "reasondistill.train.grpo:run", "problems"),
    "kdrl": Objective("reasondistill.train.kdrl:KDRLConfig", "reasondistill.train.kdrl:run", "problems"),
    "gkd": Objective("reasondistill.train.gkd_config:GKDObjectiveConfig", "reasondistill.train.gkd:run", "curated"),
}


def _load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown training objective '{name}' (available: {', '.join(OBJECTIVES)})")
    return OBJECTIVES[name]


def objective_config(name: str, options: dict[str, Any] | None) -> Any:
    """Build and validate the objective's own config from ``train.objective`` options."""
    from ..config import build

    obj = objective(name)
    if obj.config is None:
        if options:
            raise ConfigError(f"objective '{name}' takes no train.objective options (got {sorted(options)})")
        return None
    return build(_load(obj.config), options or {}, "train.objective")


def run_objective(train_cfg: Any, data: Any, out_dir: Any, *, logprobs: Any = None, verify_cfg: Any = None,
                  prompt_cfg: Any = None) -> dict:
    """Dispatch ``train_cfg.method`` to its trainer. RL objectives score their own samples
    with ``verify_cfg`` and prompt with ``prompt_cfg`` (the recipe's, so both match evaluation)."""
    obj = objective(train_cfg.method)
    fn = _load(obj.run)
    if obj.config is None:
        return fn(train_cfg, data, out_dir)
    cfg = objective_config(train_cfg.method, train_cfg.objective)
    if obj.needs_logprobs:
        if logprobs is None:
            raise ConfigError(f"objective '{train_cfg.method}' needs the teacher's cached logprobs (--logprobs)")
        return fn(train_cfg, cfg, data, logprobs, out_dir)
    if obj.data == "problems":
        return fn(train_cfg, cfg, data, out_dir, verify_cfg=verify_cfg, prompt_cfg=prompt_cfg)
    return fn(train_cfg, cfg, data, out_dir)
