"""Training on many devices: the accelerate configs shipped with the package, and the launcher.

``reasondistill train METHOD ... --launch NAME --num-processes N`` re-runs the same command
under ``accelerate launch`` with the config file of ``NAME`` (a row of ``LAUNCHES``), one
process per device. Each process runs the ordinary trainer: ``transformers.Trainer`` joins the
process group accelerate set up (gloo on CPU, NCCL on GPUs), shards each batch over the
processes and averages gradients; ``train/base.py`` keeps the token-mean of the loss over the
whole step across processes and lets rank 0 alone write the checkpoint, the loss log and the
manifest. ``reasondistill launch-config NAME`` prints a config's path, to pass to
``accelerate launch --config_file`` by hand (other machines, more options).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError

HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Launch:
    file: str  # accelerate config file beside this module
    shards: tuple[str, ...]  # what each process keeps 1/N of: "params", "grads", "optimizer"
    needs: str | None = None  # the module it needs besides accelerate


LAUNCHES: dict[str, Launch] = {
    "ddp": Launch("ddp.yaml", ()),
    "fsdp": Launch("fsdp.yaml", ("params", "grads", "optimizer")),
    "zero2": Launch("deepspeed_zero2.yaml", ("grads", "optimizer"), needs="deepspeed"),
    "zero3": Launch("deepspeed_zero3.yaml", ("params", "grads", "optimizer"), needs="deepspeed"),
}


def launch(name: str) -> Launch:
    if name not in LAUNCHES:
        raise ConfigError(f"--launch {name!r} is not one of: {', '.join(LAUNCHES)}")
    return LAUNCHES[name]


def config_path(name: str) -> Path:
    """The shipped accelerate config file of ``name``."""
    return HERE / launch(name).file


def read_config(name: str) -> dict[str, Any]:
    """The config as accelerate reads it (its own ``ClusterConfig`` checks the keys)."""
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(config_path(name))).to_dict()


def check(name: str, train_cfg: Any) -> None:
    """What the launch cannot do, before any process starts: sharding needs CUDA devices (on
    CPU, accelerate would quietly run FSDP as DDP) and a full model to merge LoRA into."""
    from ... import models

    if not launch(name).shards:
        return
    if not models.pick_device(train_cfg.device).startswith("cuda"):
        raise ConfigError(f"--launch {name} shards over CUDA devices and train.device resolves to "
                          f"{models.pick_device(train_cfg.device)!r}; use --launch ddp on CPU")
    if train_cfg.lora:
        raise ConfigError(f"--launch {name} with train.lora is not supported (LoRA merges into full weights); "
                          f"use --launch ddp")


def rank() -> int:
    """This process's global rank (0 when not launched)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(name: str, num_processes: int, argv: list[str], *, grad_accum: int = 1, check: bool = True) -> list[str]:
    """The ``accelerate launch`` command running ``reasondistill`` with ``argv`` in ``num_processes``
    processes under the ``name`` config. On a machine without CUDA, DDP runs as CPU processes over
    gloo (accelerate's ``--cpu`` would start only one process without MPI). ``check``: fail now
    when the launch needs a module that is not installed."""
    spec = launch(name)
    if num_processes < 1:
        raise ConfigError("--num-processes must be >= 1")
    if spec.needs and check:
        import importlib.util

        if importlib.util.find_spec(spec.needs) is None:
            raise ConfigError(f"--launch {name} needs {spec.needs}: pip install {spec.needs}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path(name)),
           "--num_processes", str(num_processes), "--main_process_port", str(_free_port())]
    if spec.needs == "deepspeed":  # DeepSpeed insists its accumulation matches the Trainer's
        cmd += ["--gradient_accumulation_steps", str(grad_accum)]
    return cmd + ["-m", "reasondistill", *argv]


def run(name: str, num_processes: int, argv: list[str], *, grad_accum: int = 1) -> int:
    """Run :func:`command` and return its exit code."""
    import subprocess

    return subprocess.call(command(name, num_processes, argv, grad_accum=grad_accum))
