"""Tail weight averaging (``train.average_last``): the saved student is the uniform mean of its
weights after every optimizer step of the run's last fraction, not the last step's weights.

Why: a mean over many steps (stochastic weight averaging, Izmailov et al. 2018; LAWA, Kaddour
2022) weighs the last few batches less. Measured on ``curation``'s SFT over five seeds it did not
narrow their spread (README: averaging the tail): a seed's result is set by its whole data order,
not its last batches. It stays an option for runs whose last steps are noisy. The mean covers the trainable parameters only (LoRA: the adapters), kept in fp32 on the
parameters' device; it travels with every checkpoint (:data:`STATE`), so a resumed run saves the
same mean as one that never stopped.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError

log = logging.getLogger(__name__)

STATE = "weight_average.pt"  # in a checkpoint folder: the running mean and how many steps it holds


def first_step(max_steps: int, fraction: float) -> int:
    """The first optimizer step whose weights enter the mean: the last ``ceil(fraction x max_steps)``
    steps are averaged (at least the last one)."""
    return max_steps - max(1, math.ceil(fraction * max_steps)) + 1


class RunningMean:
    """The uniform mean of a set of named tensors, one update at a time (fp32, in place)."""

    def __init__(self) -> None:
        self.mean: dict[str, Any] = {}
        self.count = 0

    def update(self, named: dict[str, Any]) -> None:
        import torch

        self.count += 1
        with torch.no_grad():
            for name, p in named.items():
                value = p.detach().float()
                if name not in self.mean:
                    self.mean[name] = value.clone()
                else:
                    self.mean[name].add_(value - self.mean[name], alpha=1.0 / self.count)

    def copy_into(self, named: dict[str, Any]) -> None:
        import torch

        missing = sorted(set(named) - set(self.mean))
        if missing:
            raise RuntimeError(f"train.average_last: no mean for parameters {missing[:3]}")
        with torch.no_grad():
            for name, p in named.items():
                p.copy_(self.mean[name].to(p.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": {k: v.cpu() for k, v in self.mean.items()}}

    def load_state_dict(self, state: dict[str, Any], device: Any) -> None:
        self.count = int(state["count"])
        self.mean = {k: v.to(device) for k, v in state["mean"].items()}


def trainable(model: Any) -> dict[str, Any]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def check(trainer: Any) -> None:
    """Sharded weights (``--launch fsdp|zero2|zero3``) hold one shard per process: refused."""
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        raise ConfigError("train.average_last needs whole weights on each process; it does not run under "
                          "--launch fsdp|zero2|zero3 (use ddp, or train.average_last: 0)")


def callback(cfg: TrainConfig, trainer: Any):
    """A callback that keeps the tail mean (:class:`RunningMean`), saves it into each checkpoint
    before the checkpoint is marked complete, and loads it back on a resume (:func:`resume`)."""
    from transformers import TrainerCallback

    class WeightAverage(TrainerCallback):
        def __init__(self) -> None:
            self.mean = RunningMean()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= first_step(state.max_steps, cfg.average_last):
                self.mean.update(trainable(trainer.model))
            return control

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                import torch

                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                folder.mkdir(parents=True, exist_ok=True)
                torch.save(self.mean.state_dict(), folder / STATE)

        def resume(self, checkpoint: str | Path) -> None:
            """The mean as the checkpoint at ``checkpoint`` left it (an empty one before the tail)."""
            import torch

            path = Path(checkpoint) / STATE
            if not path.is_file():
                raise ConfigError(f"train.average_last: checkpoint {checkpoint} has no {STATE} (saved by a run "
                                  "without weight averaging?); delete the train stage's trainer/ folder to start over")
            device = next(trainer.model.parameters()).device
            self.mean.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), device)

        def apply(self, model: Any) -> int:
            """Write the mean into ``model``'s trainable parameters; returns how many steps it holds."""
            if self.mean.count:
                self.mean.copy_into(trainable(model))
            log.info("train: saved weights are the mean of the last %d steps' (train.average_last = %g)",
                     self.mean.count, cfg.average_last)
            return self.mean.count

    return WeightAverage()
