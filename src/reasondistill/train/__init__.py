"""Stage 4, train: one objective per file, each with its config dataclass beside it.

``OBJECTIVES`` is the name table: objective -> (config class, run function, the run-folder
artifact it trains on, and optional hooks). Entries are lazy ``module:attr`` strings, so
naming an objective in a recipe imports nothing heavy, and a bad objective config fails
before any model is loaded. Adding an objective is one file plus one row: the train stage,
the pipeline and the CLI read everything they need from the row.

Every objective's run function has the signature
``run(train_cfg, objective_cfg, data_path, out_dir, *, context) -> manifest``, where
``context`` (:class:`TrainContext`) carries the logprob store, the verifier and prompt
configs of the recipe (RL objectives score and prompt like evaluation does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# what an objective trains on: a run-folder artifact (``layout.FILES``) and how to describe it
DATA_KINDS = {
    "curated": "curated train.jsonl",
    "pairs": "pairs.jsonl from `reasondistill pairs`",
    "train_problems": "problems train.jsonl (the student samples its own answers)",
}


@dataclass(frozen=True, slots=True)
class Objective:
    config: str | None  # "module:Class" of the objective's own options; None: TrainConfig alone
    run: str  # "module:function"
    data: str  # the artifact --data is, a key of DATA_KINDS
    needs_logprobs: bool = False  # reads the teacher's top-k logprob store (generate.top_logprobs > 0)
    prompts: str | None = None  # "module:function(objective_cfg) -> {task: prefix}" for students asked per task
    fixed_tokens: bool = False  # trains on its curated data as is, counting its tokens: a token budget applies
    on_policy: bool = False  # trains on the student's own samples: starts from SFT by default (train.warm_start)
    trace_rows: bool = False  # one training row per curated trace, in file order: objectives marked so read the
    # same traces in the same order under one data seed (compare pairs their seeds)


@dataclass(frozen=True, slots=True)
class TrainContext:
    """What an objective may need besides its data: the teacher's logprob store and the recipe's
    verifier and prompt configs."""

    logprobs: Path | None = None
    verify_cfg: Any = None
    prompt_cfg: Any = None


OBJECTIVES: dict[str, Objective] = {
    "sft": Objective(None, "reasondistill.train.sft:run", "curated", fixed_tokens=True, trace_rows=True),
    "kd": Objective("reasondistill.train.kd_config:KDConfig", "reasondistill.train.kd:run", "curated",
                    needs_logprobs=True, fixed_tokens=True, trace_rows=True),
    "multitask": Objective("reasondistill.train.multitask:MultiTaskConfig", "reasondistill.train.multitask:run",
                           "curated", prompts="reasondistill.train.multitask:task_prefixes", fixed_tokens=True),
    "redi": Objective("reasondistill.train.redi:REDIConfig", "reasondistill.train.redi:run", "pairs"),
    "dpo": Objective("reasondistill.train.dpo:DPOObjectiveConfig", "reasondistill.train.dpo:run", "pairs"),
    "simpo": Objective("reasondistill.train.simpo:SimPOConfig", "reasondistill.train.simpo:run", "pairs"),
    "grpo": Objective("reasondistill.train.grpo:GRPOObjectiveConfig", "reasondistill.train.grpo:run",
                      "train_problems", on_policy=True),
    "kdrl": Objective("reasondistill.train.kdrl:KDRLConfig", "reasondistill.train.kdrl:run", "train_problems",
                      on_policy=True),
    "gkd": Objective("reasondistill.train.gkd_config:GKDObjectiveConfig", "reasondistill.train.gkd:run", "curated",
                     on_policy=True),
    "negative-advantage": Objective("reasondistill.train.negative_advantage:NegativeAdvantageConfig",
                                    "reasondistill.train.negative_advantage:run", "curated", on_policy=True),
}


def objective(name: str) -> Objective:
    from ..registry import check
    return OBJECTIVES[check(OBJECTIVES, name, "training objective (train.method)")]


def objective_config(name: str, options: dict[str, Any] | None) -> Any:
    """Build and validate the objective's own config from ``train.objective`` options."""
    from ..config import build
    from ..registry import load

    obj = objective(name)
    if obj.config is None:
        if options:
            raise ConfigError(f"objective '{name}' takes no train.objective options (got {sorted(options)})")
        return None
    return build(load(obj.config), options or {}, "train.objective")


def run_objective(train_cfg: Any, data: Any, out_dir: Any, *, logprobs: Any = None, verify_cfg: Any = None,
                  prompt_cfg: Any = None) -> dict:
    """Train ``train_cfg.method`` on ``data`` into ``out_dir`` (files to files, usable alone)."""
    from ..registry import load

    obj = objective(train_cfg.method)
    cfg = objective_config(train_cfg.method, train_cfg.objective)  # the recipe's own mistakes first
    if obj.needs_logprobs and logprobs is None and getattr(cfg, "teacher", None) is None:
        raise ConfigError(f"objective '{train_cfg.method}' needs the teacher's cached logprobs (--logprobs; "
                          "generate with generate.top_logprobs > 0)")
    context = TrainContext(logprobs=Path(logprobs) if logprobs is not None else None, verify_cfg=verify_cfg,
                           prompt_cfg=prompt_cfg)
    manifest = load(obj.run)(train_cfg, cfg, data, out_dir, context=context)
    if obj.prompts:  # the checkpoint carries how it is to be asked; evaluation reads it back
        from ..models import record_task_prefixes
        from .base import checkpoint_path
        record_task_prefixes(checkpoint_path(out_dir, manifest["outputs"]), dict(load(obj.prompts)(cfg)))
    return manifest


def run(recipe: Any, layout: Any) -> dict:
    """The train stage over a run folder: the objective's declared input, into ``layout``'s train folder
    (an on-policy objective from an SFT pass on the curated traces first: :mod:`.warm_start`)."""
    from .warm_start import sft_first

    obj = objective(recipe.train.method)
    cfg = sft_first(recipe.train, layout.path("curated"), layout.path("warm_start"))
    return run_objective(cfg, layout.path(obj.data), layout.stage_dir("train"),
                         logprobs=layout.logprobs if obj.needs_logprobs else None, verify_cfg=recipe.verify,
                         prompt_cfg=recipe.generate.prompt)
