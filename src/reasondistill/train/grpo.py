"""GRPO on rule rewards from the pipeline's verifier, on top of TRL's GRPOTrainer.

The student samples ``num_generations`` completions per problem, under exactly the chat
messages it is evaluated on (:func:`reasondistill.teachers.prompts.student_messages`); the
rewards of :mod:`.rewards` score them (correctness by the verifier, answer format, an optional
token budget) and TRL turns group-normalised rewards into a clipped policy-gradient loss.

TRL does the sampling, the advantages and the loss. This file adds what a pipeline stage needs
around it: problems as a conversational dataset with the columns the rewards read, the
batch/group arithmetic checked (with a :class:`ConfigError`) before any model is loaded, a
merged safetensors checkpoint (:func:`.sft.save_checkpoint`), ``loss.jsonl`` with the mean
reward of every logging step, and a manifest.

Batch sizes count completions, as in TRL: ``train.batch_size * train.grad_accum`` completions
are sampled per optimizer step, so it must be a multiple of ``num_generations``; each step sees
``batch_size * grad_accum / num_generations`` problems. ``train.max_length`` is not used
(prompts are not truncated; ``max_completion_length`` bounds the completions).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import PromptConfig, TrainConfig, VerifyConfig
from ..errors import ConfigError
from ..records import Problem
from ..teachers.prompts import format_answer, student_messages
from . import common, sft
from .preflight import PreflightReport, preflight
from .rewards import RewardConfig, build_rewards, problem_columns, reward_name

log = logging.getLogger(__name__)

MODEL_DIR = sft.MODEL_DIR
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")


@dataclass
class GRPOObjectiveConfig:
    """Sampling and policy-loss knobs of GRPO; optimiser settings come from :class:`TrainConfig`."""

    num_generations: int = 8  # completions sampled per problem (the group)
    max_completion_length: int = 256  # new tokens per completion
    temperature: float = 1.0  # sampling temperature (log-probs are computed at this temperature too)
    top_p: float = 1.0
    beta: float = 0.0  # KL penalty to the initial student; 0: no reference model is loaded
    epsilon: float = 0.2  # PPO-style clip range of the importance ratio
    num_iterations: int = 1  # policy updates per sampled batch
    loss_type: str = "dapo"  # grpo | dapo | dr_grpo | bnpo (TRL's aggregation over tokens)
    scale_rewards: str = "group"  # group | batch | none: divide advantages by this reward std
    mask_truncated_completions: bool = False  # completions that hit max_completion_length get no loss
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ConfigError("grpo.num_generations must be >= 2 (advantages compare completions of one problem)")
        if self.max_completion_length < 1:
            raise ConfigError("grpo.max_completion_length must be >= 1")
        if not 0.0 < self.temperature <= 5.0:
            raise ConfigError("grpo.temperature must be in (0, 5]")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("grpo.top_p must be in (0, 1]")
        if self.beta < 0:
            raise ConfigError("grpo.beta must be >= 0")
        if not 0.0 < self.epsilon < 1.0:
            raise ConfigError("grpo.epsilon must be in (0, 1)")
        if self.num_iterations < 1:
            raise ConfigError("grpo.num_iterations must be >= 1")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"grpo.loss_type = {self.loss_type!r} is not one of: {', '.join(LOSS_TYPES)}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ConfigError(f"grpo.scale_rewards = {self.scale_rewards!r} is not one of: "
                              f"{', '.join(SCALE_REWARDS)}")
        if isinstance(self.rewards, dict):  # built from a plain mapping (Python API)
            self.rewards = RewardConfig(**self.rewards)


def check_batch(train_cfg: TrainConfig, grpo_cfg: GRPOObjectiveConfig) -> None:
    """Raise :class:`ConfigError` unless a step's completions split into whole groups."""
    per_step = train_cfg.batch_size * train_cfg.grad_accum
    if per_step % grpo_cfg.num_generations:
        raise ConfigError(
            f"train.batch_size * train.grad_accum = {per_step} completions per step is not a multiple of "
            f"grpo.num_generations = {grpo_cfg.num_generations}; e.g. set train.batch_size="
            f"{grpo_cfg.num_generations}")


def problems_dataset(problems: list[Problem], prompt_cfg: PromptConfig | None = None):
    """A ``datasets.Dataset``: conversational ``prompt`` plus the columns the rewards read."""
    from datasets import Dataset

    if not problems:
        raise ConfigError("GRPO needs at least one training problem")
    return Dataset.from_list([{"prompt": student_messages(p, prompt_cfg), **problem_columns(p)} for p in problems])


def grpo_args(train_cfg: TrainConfig, grpo_cfg: GRPOObjectiveConfig, out_dir: Path, *, use_bf16: bool,
              device: str, reward_weights: list[float], **overrides: Any):
    from trl import GRPOConfig

    kwargs: dict[str, Any] = dict(
        common.training_kwargs(train_cfg, out_dir, use_bf16, device),
        num_generations=grpo_cfg.num_generations,
        max_completion_length=grpo_cfg.max_completion_length,
        temperature=grpo_cfg.temperature,
        top_p=grpo_cfg.top_p,
        beta=grpo_cfg.beta,
        epsilon=grpo_cfg.epsilon,
        num_iterations=grpo_cfg.num_iterations,
        loss_type=grpo_cfg.loss_type,
        scale_rewards=grpo_cfg.scale_rewards,
        mask_truncated_completions=grpo_cfg.mask_truncated_completions,
        reward_weights=reward_weights,
        log_completions=False,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def train(train_cfg: TrainConfig, grpo_cfg: GRPOObjectiveConfig, problems: list[Problem], out_dir: Path, *,
          verify_cfg: VerifyConfig | None = None, prompt_cfg: PromptConfig | None = None,
          reward_funcs: list | None = None, reward_weights: list[float] | None = None,
          trainer_cls: type | None = None, trainer_kwargs: dict[str, Any] | None = None,
          args_overrides: dict[str, Any] | None = None, preflight_report: PreflightReport | None = None):
    """Train in memory. Returns ``(model, tokenizer, train_output, log_history, info)``; a LoRA
    model comes back merged into plain weights.

    ``reward_funcs``/``reward_weights`` replace the rule rewards of ``grpo_cfg.rewards`` (tests,
    custom objectives); ``trainer_cls``/``trainer_kwargs``/``args_overrides`` let an objective
    built on GRPO (:mod:`.kdrl`) swap in a ``GRPOTrainer`` subclass, which passes the
    ``preflight_report`` it already made (else the chat-template/EOS check runs here).
    """
    from trl import GRPOTrainer

    check_batch(train_cfg, grpo_cfg)
    if reward_funcs is None:
        reward_funcs, reward_weights = build_rewards(grpo_cfg.rewards, verify_cfg)
    elif reward_weights is None:
        reward_weights = [1.0] * len(reward_funcs)
    if len(reward_weights) != len(reward_funcs):
        raise ConfigError(f"{len(reward_funcs)} reward functions but {len(reward_weights)} weights")
    dataset = problems_dataset(problems, prompt_cfg)

    ref = models.resolve(train_cfg.student)
    tok = models.load_tokenizer(ref.path, trust_remote_code=train_cfg.trust_remote_code)
    if preflight_report is None:
        preflight_report = preflight(tok, example={"prompt": dataset[0]["prompt"], "completion": [
            {"role": "assistant", "content": format_answer(problems[0].answer)}]})
        for warning in preflight_report.warnings:
            log.warning("preflight: %s", warning)
    device, use_bf16 = common.precision(train_cfg)
    model = models.load_model(ref.path, dtype="float32", device=device,
                              trust_remote_code=train_cfg.trust_remote_code)
    model.train()
    args = grpo_args(train_cfg, grpo_cfg, out_dir, use_bf16=use_bf16, device=device,
                     reward_weights=reward_weights, **(args_overrides or {}))
    trainer = (trainer_cls or GRPOTrainer)(model=model, reward_funcs=list(reward_funcs), args=args,
                                           train_dataset=dataset, processing_class=tok,
                                           peft_config=common.lora_config(train_cfg),
                                           **(trainer_kwargs or {}))
    result = trainer.train()
    trained = trainer.model.merge_and_unload() if train_cfg.lora else trainer.model
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    info = {"student": ref.identity, "bf16": use_bf16, "rewards": [reward_name(f) for f in reward_funcs],
            "reward_weights": list(reward_weights), "preflight": preflight_report.to_dict()}
    return trained.eval(), tok, result, history, info


def save_run(out_dir: Path, *, method: str, config: dict, inputs: dict[str, str], started: float, model, tok,
             result, history: list[dict], info: dict, n_problems: int) -> dict:
    """Write ``model/``, ``loss.jsonl`` and the manifest of an RL run (shared with :mod:`.kdrl`)."""
    path = sft.save_checkpoint(model, tok, out_dir / MODEL_DIR)
    io.write_jsonl(out_dir / "loss.jsonl", history)
    losses = [h["loss"] for h in history]
    rewards = [h["reward"] for h in history if h.get("reward") is not None]
    outputs = {
        "files": ["loss.jsonl"],
        "model_dir": str(path),
        "method": method,
        "n_problems": n_problems,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "first_reward": rewards[0] if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
        **common.dtype_record(config["train"]),
        **info,
    }
    return io.write_manifest(out_dir, stage="train", config=config, inputs=inputs, outputs=outputs, started=started)


def run(train_cfg: TrainConfig, grpo_cfg: GRPOObjectiveConfig, problems_path: str | Path, out_dir: str | Path,
        *, verify_cfg: VerifyConfig | None = None, prompt_cfg: PromptConfig | None = None) -> dict:
    """GRPO-train ``train_cfg.student`` on the problems in ``problems_path`` (Problem JSONL) and save
    ``out_dir/model``. A finished run with the same config and inputs is skipped."""
    check_batch(train_cfg, grpo_cfg)  # before anything is read or loaded
    out_dir = Path(out_dir)
    verify_cfg = verify_cfg or VerifyConfig()
    prompt_cfg = prompt_cfg or PromptConfig()
    config = {"train": dataclasses.asdict(train_cfg), "grpo": dataclasses.asdict(grpo_cfg),
              "verify": dataclasses.asdict(verify_cfg), "prompt": dataclasses.asdict(prompt_cfg)}
    inputs = io.hash_inputs([problems_path])
    done = io.completed_manifest(out_dir, config, inputs)
    if done:
        return done
    started = time.time()
    problems = io.read_records(problems_path, Problem)
    model, tok, result, history, info = train(train_cfg, grpo_cfg, problems, out_dir, verify_cfg=verify_cfg,
                                              prompt_cfg=prompt_cfg)
    return save_run(out_dir, method="grpo", config=config, inputs=inputs, started=started, model=model, tok=tok,
                    result=result, history=history, info=info, n_problems=len(problems))
