"""reasoning-gym tasks, shared by the problems stage (generation) and the verifier (scoring).

JSON turns tuples into lists, and a few tasks (arc_agi, rearc) compare tuples in
``score_answer``; :func:`original_entry` regenerates the exact entry from the stored index.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from typing import Any

from .errors import ConfigError


def registry() -> dict[str, tuple[type, type]]:
    """``{task name: (dataset class, config class)}`` from reasoning-gym."""
    from reasoning_gym.factory import DATASETS

    return DATASETS


def check_task(task: str, task_config: dict[str, Any]) -> type:
    """Validate the task name and its knobs against reasoning-gym; return the config class."""
    tasks = registry()
    if task not in tasks:
        close = difflib.get_close_matches(task, tasks, n=5, cutoff=0.5)
        hint = f"did you mean: {', '.join(close)}?" if close else f"e.g. {', '.join(sorted(tasks)[:8])}, ..."
        raise ConfigError(f"problems.task: unknown reasoning-gym task {task!r} ({len(tasks)} tasks; {hint})")
    config_cls = tasks[task][1]
    knobs = {f.name for f in dataclasses.fields(config_cls)} - {"seed", "size"}
    if reserved := sorted({"seed", "size"} & set(task_config)):
        raise ConfigError(f"problems.task_config.{reserved[0]} is set by reasondistill; use problems.seed "
                          "and problems.n_train/n_eval instead")
    if unknown := sorted(set(task_config) - knobs):
        raise ConfigError(f"problems.task_config: unknown key(s) {', '.join(unknown)} for task {task!r}; "
                          f"valid keys: {', '.join(sorted(knobs))}")
    return config_cls


def make_dataset(task: str, task_config: dict[str, Any], seed: int, size: int) -> Any:
    import reasoning_gym

    try:
        return reasoning_gym.create_dataset(task, seed=seed, size=size, **task_config)
    except (AssertionError, TypeError, ValueError, KeyError) as e:  # reasoning-gym validates with assert
        raise ConfigError(f"problems.task_config for task {task!r} is invalid: {e or type(e).__name__}") from None


@functools.lru_cache(maxsize=8)
def _cached_dataset(task: str, task_config_json: str, seed: int, size: int) -> Any:
    return make_dataset(task, json.loads(task_config_json), seed, size)


def original_entry(meta: dict[str, Any]) -> dict[str, Any]:
    """The reasoning-gym entry with its original Python types, for ``score_answer``.

    Regenerated from ``rg_seed``/``rg_size``/``rg_index``; falls back to the stored JSON copy
    when regeneration gives a different question (e.g. another reasoning-gym version).
    """
    stored = meta["rg_entry"]
    try:
        dataset = _cached_dataset(meta["task"], json.dumps(meta.get("task_config") or {}, sort_keys=True),
                                  meta["rg_seed"], meta["rg_size"])
        entry = dataset[meta["rg_index"]]
    except (KeyError, ConfigError):
        return stored
    return entry if entry.get("question") == stored.get("question") else stored
