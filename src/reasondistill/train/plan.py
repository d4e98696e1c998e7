"""``reasondistill train ... --dry-run``: what a training run would do, without loading weights.

The student's size comes from its config alone (the model is built on the ``meta`` device,
which allocates nothing); the memory estimate counts what every process keeps for the
model state with AdamW in fp32: weights 4 B, gradients 4 B and two Adam moments 8 B per
parameter (gradients and moments only for trainable ones, LoRA adapters when ``train.lora``).
ZeRO and FSDP divide the parts they shard by the number of processes. Activations depend on
sequence length and batch and are not counted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import io, models
from ..config import TrainConfig
from .launch import launch

GIB = 1024 ** 3


@dataclass(frozen=True, slots=True)
class TrainPlan:
    method: str
    launch: str  # single | ddp | fsdp | zero2 | zero3
    num_processes: int
    device: str  # each process's device kind: cpu | cuda | mps
    precision: str  # autocast dtype over fp32 weights
    per_device_batch: int
    grad_accum: int
    effective_batch: int  # per-device x grad-accum x processes
    n_examples: int
    steps_per_epoch: int
    optimizer_steps: int
    params: int
    trainable: int
    sharded: tuple[str, ...]
    memory_bytes: dict[str, int] = field(default_factory=dict)  # per process: weights, grads, optimizer, total

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        m = self.memory_bytes
        gib = {k: f"{v / GIB:.2f} GiB" if v >= GIB else f"{v / 2 ** 20:.1f} MiB" for k, v in m.items()}
        shard = ", ".join(self.sharded) if self.sharded else "nothing (full replica per process)"
        return "\n".join([
            f"plan for train {self.method} (dry run: nothing trained)",
            f"  launch:          {self.launch}, {self.num_processes} process(es) on {self.device}",
            f"  precision:       {self.precision} autocast over fp32 weights",
            f"  batch:           {self.per_device_batch} per device x {self.grad_accum} grad-accum x "
            f"{self.num_processes} processes = {self.effective_batch} effective",
            f"  data:            {self.n_examples} examples, {self.steps_per_epoch} optimizer steps per epoch",
            f"  optimizer steps: {self.optimizer_steps}",
            f"  parameters:      {self.params:,} ({self.trainable:,} trainable)",
            f"  sharded:         {shard}",
            f"  memory/process:  {gib['total']} = weights {gib['weights']} + grads {gib['grads']} + "
            f"AdamW states {gib['optimizer']} (activations not counted)",
        ])


def count_params(cfg: TrainConfig) -> tuple[int, int]:
    """``(all, trainable)`` parameters of ``cfg.student`` (with LoRA adapters when ``cfg.lora``),
    counted on the ``meta`` device: no weights load."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    ref = models.resolve(cfg.student)
    conf = AutoConfig.from_pretrained(ref.path, trust_remote_code=cfg.trust_remote_code)
    with torch.device("meta"):  # accelerate's init_empty_weights leaves tied embeddings untied
        model = AutoModelForCausalLM.from_config(conf, trust_remote_code=cfg.trust_remote_code)
    if cfg.lora:
        from .base import with_lora

        model = with_lora(model, cfg)
    # tied weights are one parameter: parameters() yields each once
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def memory(params: int, trainable: int, shards: tuple[str, ...], n: int) -> dict[str, int]:
    """Bytes per process of the fp32 model state under AdamW, the sharded parts divided by ``n``."""
    def part(name: str, nbytes: int) -> int:
        return math.ceil(nbytes / n) if name in shards else nbytes

    m = {"weights": part("params", 4 * params), "grads": part("grads", 4 * trainable),
         "optimizer": part("optimizer", 8 * trainable)}
    return {**m, "total": sum(m.values())}


def plan(cfg: TrainConfig, data: str | Path, *, launch_name: str | None = None, num_processes: int = 1,
         n_examples: int | None = None) -> TrainPlan:
    """The resolved plan of training ``cfg`` on ``data`` (counted as records; examples whose
    prompt overflows ``max_length`` are dropped later and not foreseen here)."""
    from .base import mixed_dtype

    shards = launch(launch_name).shards if launch_name else ()
    n = num_processes if launch_name else 1
    device = models.pick_device(cfg.device)
    precision = mixed_dtype(cfg.dtype, device)[0]
    if n_examples is None:
        n_examples = sum(1 for _ in io.iter_jsonl(data))
    batches = math.ceil(n_examples / (cfg.batch_size * n))  # per process per epoch
    per_epoch = max(batches // cfg.grad_accum, 1)
    steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(cfg.epochs * per_epoch)
    params, trainable = count_params(cfg)
    return TrainPlan(method=cfg.method, launch=launch_name or "single", num_processes=n,
                     device=device.split(":")[0], precision=precision, per_device_batch=cfg.batch_size,
                     grad_accum=cfg.grad_accum, effective_batch=cfg.batch_size * cfg.grad_accum * n,
                     n_examples=n_examples, steps_per_epoch=per_epoch, optimizer_steps=steps, params=params,
                     trainable=trainable, sharded=shards, memory_bytes=memory(params, trainable, shards, n))
