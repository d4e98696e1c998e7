"""Resumable training: a killed run continues where its last checkpoint left it.

``transformers.Trainer`` already saves and restores what a resume needs (weights, optimizer,
scheduler, the RNG states, the step, and the data position it skips back to). This module adds
what it lacks, for every objective alike (they all train through :func:`.base.fit`):

- **when**: :class:`Checkpoints` asks for a save every ``train.checkpoint_every`` of the run's
  steps (skipping one that would make saving over :data:`MAX_OVERHEAD` of the time), every
  ``checkpoint_steps`` steps or after ``checkpoint_minutes`` (the Trainer has no time-based
  saving), never at the last step (the finished model is saved whole right after);
- **complete or not**: a checkpoint folder gets :data:`COMPLETE` only once everything in it is
  written, so a kill during a save leaves a folder that is deleted, not resumed from;
- **whose**: the scratch folder (``out_dir/trainer``) holds :data:`IDENTITY`, the hash of the
  stage's config and input files; a run with another config or other inputs starts fresh
  (the folder is emptied), never silently continues someone else's optimizer;
- **the objective's own state**: a trainer may define ``resume_state() -> dict`` (JSON) and
  ``restore_state(dict)`` for what the Trainer does not know of (GKD's sampling RNG and counts);
- **a carried optimizer**: ``train.carry_optimizer`` saves the optimizer's state beside the
  model, ``train.init_optimizer`` loads one before the first step (``loop.retrain: last``).

The checkpoint settings are left out of a run's identity: they say how a run is saved on the
way, not what it trains, so changing them neither retrains a finished run nor refuses a resume.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import io
from ..config import TrainConfig
from ..errors import InputError

log = logging.getLogger(__name__)

SCRATCH = "trainer"  # the Trainer's output_dir inside a train stage's out_dir: checkpoints, tracker runs
IDENTITY = "identity.json"  # in SCRATCH: which config and inputs wrote its checkpoints
COMPLETE = "complete.json"  # in a checkpoint folder: written last, so a kill mid-save is told apart
OBJECTIVE_STATE = "objective_state.json"  # in a checkpoint folder: the trainer's resume_state()
OPTIMIZER = "optimizer.pt"  # beside out_dir/model with train.carry_optimizer
MAX_OVERHEAD = 0.1  # checkpoint_every (the default) skips a due save that would take more of the time than this
# not what a run trains: how often it saves, and warm_start (where it applies, the student it set is in the identity)
# packing and compile: how the same loss is computed (equal within float tolerance, tested), so a run
# finished before they existed, or with another setting, is not trained again
NOT_IDENTITY = ("checkpoint_every", "checkpoint_steps", "checkpoint_minutes", "checkpoint_keep", "warm_start",
                "packing", "compile")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class Run:
    """The resumable run :func:`.base.cached_run` is inside: its scratch folder and identity,
    and the step it resumed from (0: from the start)."""

    scratch: Path
    identity: str
    resumed_step: int = 0


_CURRENT: ContextVar[Run | None] = ContextVar("reasondistill_resumable_run", default=None)


def current() -> Run | None:
    """The run :func:`resumable` set up, else ``None`` (a direct ``train()`` call: no checkpoints)."""
    return _CURRENT.get()


# a method's options that choose how its loss is computed, not what it is (dpo's engine: our trainer
# and TRL's train the same weights within float tolerance, tested), by the method's config key. simpo's
# engine is not here: TRL's CPOTrainer trains on a BOS and an EOS token more than ours
METHOD_NOT_IDENTITY = {"dpo": ("engine",)}


def identity_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a ``TrainConfig`` dict, alone or under ``"train"``) without :data:`NOT_IDENTITY`
    (and a method's options without its :data:`METHOD_NOT_IDENTITY`)."""
    if isinstance(config.get("train"), dict):
        out = {**config, "train": identity_config(config["train"])}
        for method, keys in METHOD_NOT_IDENTITY.items():
            if isinstance(out.get(method), dict):
                out[method] = {k: v for k, v in out[method].items() if k not in keys}
        return out
    return {k: v for k, v in config.items() if k not in NOT_IDENTITY}


@contextmanager
def resumable(out_dir: str | Path, config: Any, inputs: list[Any], *, writer: bool) -> Iterator[Run]:
    """Within: :func:`.base.fit` checkpoints into ``out_dir/trainer`` and resumes from it.
    The ``writer`` (rank 0) empties a scratch folder another config or other inputs wrote, and
    stamps it with this run's identity; other ranks only read (``fit`` waits for rank 0)."""
    identity = io.sha256_json({"config": config, "inputs": io.hash_inputs(inputs)})
    run = Run(Path(out_dir) / SCRATCH, identity)
    if writer:
        claim(run.scratch, identity)
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)


def claim(scratch: Path, identity: str) -> None:
    """Make ``scratch`` this run's: checkpoints of another identity (or of none) are deleted."""
    stamp = scratch / IDENTITY
    try:
        found = json.loads(stamp.read_text(encoding="utf-8")).get("identity")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != identity and any(checkpoint_dirs(scratch)):
        log.warning("train: %s holds checkpoints of another config or other inputs; starting fresh", scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    io.write_json(stamp, {"identity": identity})


def clean(out_dir: str | Path) -> None:
    """Remove the scratch folder once the run is saved and its manifest written."""
    shutil.rmtree(Path(out_dir) / SCRATCH, ignore_errors=True)


def checkpoint_dirs(scratch: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder, by step."""
    if not scratch.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in scratch.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def interval(cfg: TrainConfig, max_steps: int) -> int:
    """Optimizer steps between checkpoints (0: none, or time-based)."""
    if cfg.checkpoint_minutes:
        return 0
    if cfg.checkpoint_steps:
        return cfg.checkpoint_steps
    return math.ceil(cfg.checkpoint_every * max_steps) if cfg.checkpoint_every else 0


# ---------------------------------------------------------------------------
# distributed helpers (a no-op in one process)


def _distributed() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized()


def _barrier() -> None:
    if _distributed():
        import torch.distributed as dist
        dist.barrier()


def _agree(flag: bool, device: Any) -> bool:
    """Rank 0's ``flag`` on every rank (a time-based decision must be the same everywhere: saving
    is a collective under sharding)."""
    if not _distributed():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


# ---------------------------------------------------------------------------
# the callbacks


def _callback_base():
    from transformers import TrainerCallback
    return TrainerCallback


def checkpoint_callback(cfg: TrainConfig, trainer: Any):
    """A :class:`Checkpoints` callback for ``trainer``."""
    class Checkpoints(_callback_base()):
        """Asks the Trainer to save when one is due, and marks each save complete (see the module)."""

        def __init__(self) -> None:
            self.last = time.monotonic()  # when the last save ended (or training began)
            self.started = self.last  # when the save under way was asked for
            self.cost = 0.0  # seconds the last save took
            self.pending = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:  # the finished model is saved whole right after
                control.should_save = False
                return control
            now = time.monotonic()
            if cfg.checkpoint_minutes:
                due = _agree(now - self.last >= 60 * cfg.checkpoint_minutes, args.device)
            else:
                every = interval(cfg, state.max_steps)
                due = every > 0 and state.global_step % every == 0
                if due and not cfg.checkpoint_steps:  # the default fraction: cheap relative to the training
                    due = _agree(affordable(self.cost, now - self.last), args.device)
            self.pending = self.pending or due
            if self.pending and at_generation_start(trainer):
                control.should_save = True
                self.pending = False
                self.started = now
            return control

        def on_save(self, args, state, control, **kwargs):
            _barrier()  # every rank's part of the checkpoint is on disk
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                own = getattr(trainer, "resume_state", None)
                if own is not None:
                    io.write_json(folder / OBJECTIVE_STATE, own())
                io.write_json(folder / COMPLETE, {"step": state.global_step, "saved_at": time.time()})
                rotate(Path(args.output_dir), cfg.checkpoint_keep)
            self.last = time.monotonic()
            self.cost = self.last - self.started

    return Checkpoints()


def affordable(cost: float, trained: float) -> bool:
    """Whether a save that takes ``cost`` seconds (the last one's) after ``trained`` seconds of
    training since it keeps saving within :data:`MAX_OVERHEAD` of the time: a short run on a fast
    device would otherwise spend most of it writing checkpoints (SmolLM2-135M: ~1.5 GB, seconds)."""
    return cost <= MAX_OVERHEAD * (trained + cost)


def rotate(scratch: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, only once the newest is complete (the
    Trainer's own ``save_total_limit`` rotates before our mark is written)."""
    for _, folder in checkpoint_dirs(scratch)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


def at_generation_start(trainer: Any) -> bool:
    """False between the optimizer steps of one TRL GRPO generation (``num_iterations > 1`` or
    ``steps_per_generation > grad_accum``): its buffered samples are not in a checkpoint, so a
    due checkpoint waits for the next generation."""
    every = getattr(trainer.args, "steps_per_generation", None)
    if every is None or not hasattr(trainer, "_step"):
        return True
    return trainer._step % (every * getattr(trainer, "num_iterations", 1)) == 0


def carried_optimizer_callback(path: str):
    """Loads the optimizer state at ``path`` (``train.init_optimizer``) before the first step:
    its moments and step counts; the learning rates and schedule stay this run's own (a finished
    cosine schedule continued would train at a learning rate near 0). Not on a resume: the
    checkpoint's optimizer already carries it."""
    class CarriedOptimizer(_callback_base()):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            if state.global_step > 0 or optimizer is None:
                return
            load_optimizer_state(optimizer, path)

    return CarriedOptimizer()


def load_optimizer_state(optimizer: Any, path: str | Path) -> None:
    """``optimizer``'s per-parameter state from ``path``, keeping its own hyperparameters; an
    :class:`InputError` when the file is missing or was saved for other parameters."""
    import torch

    if not Path(path).is_file():
        raise InputError("train.init_optimizer: no such optimizer state (a run with train.carry_optimizer "
                         "saves one as optimizer.pt beside its model)", file=path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    mine = optimizer.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    theirs = [len(g["params"]) for g in saved.get("param_groups", [])]
    ours = [len(g["params"]) for g in mine["param_groups"]]
    wrong = theirs != ours or any(
        i >= len(params) or any(torch.is_tensor(v) and v.dim() and v.shape != params[i].shape for v in st.values())
        for i, st in saved.get("state", {}).items())
    if wrong:
        raise InputError(f"train.init_optimizer: an optimizer state for other parameters (groups of {theirs}; "
                         f"this student's: {ours}, or other shapes)", file=path)
    optimizer.load_state_dict({**mine, "state": saved["state"]})
    log.info("train: optimizer state carried from %s", path)


def save_optimizer_state(trainer: Any, path: Path) -> Path | None:
    """Write the optimizer's state to ``path`` atomically (rank 0); ``None`` when it is sharded
    over processes (``--launch fsdp|zero2|zero3``), where one file would hold one shard."""
    import torch

    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        log.warning("train.carry_optimizer: the optimizer is sharded over processes; its state is not carried")
        return None
    if trainer.args.process_index != 0:
        return None
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(trainer.optimizer.state_dict(), tmp)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------
# resuming


def resume_point(trainer: Any, run: Run) -> str | None:
    """The newest complete checkpoint of ``run`` (rank 0 first deletes incomplete ones; the
    others wait for it), after restoring the objective's own state from it."""
    if trainer.args.process_index == 0:
        for _, folder in checkpoint_dirs(run.scratch):
            if not (folder / COMPLETE).is_file():
                log.warning("train: %s was cut off while saving; deleting it", folder)
                shutil.rmtree(folder, ignore_errors=True)
    _barrier()
    complete = [(step, f) for step, f in checkpoint_dirs(run.scratch) if (f / COMPLETE).is_file()]
    if not complete:
        return None
    step, folder = complete[-1]
    restore = getattr(trainer, "restore_state", None)
    if restore is not None and (folder / OBJECTIVE_STATE).is_file():
        restore(io.read_json(folder / OBJECTIVE_STATE))
    run.resumed_step = step
    log.warning("train: resuming from %s (step %d)", folder, step)
    return str(folder)
