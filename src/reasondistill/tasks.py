"""reasoning-gym tasks, shared by the problems stage (generation) and the verifier (scoring).

Task names and knobs are checked against reasoning-gym before anything is generated, with
errors that name the key. JSON turns tuples into lists, and a few tasks (arc_agi, rearc)
compare tuples in ``score_answer``; :func:`original_entry` regenerates the exact entry from
the stored index.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .io import json_safe


def registry() -> dict[str, tuple[type, type]]:
    """``{task name: (dataset class, config class)}`` from reasoning-gym."""
    from reasoning_gym.factory import DATASETS

    return DATASETS


def check_task(task: str, task_config: dict[str, Any]) -> type:
    """Validate the task name and its knobs against reasoning-gym; return the config class."""
    tasks = registry()
    if task not in tasks:
        if not re.fullmatch(r"\w+", task):  # a path that does not exist, not a task name
            raise InputError("no such file or folder (a problems source is an existing file or folder, "
                             "or a reasoning-gym task name such as chain_sum)", file=task)
        close = difflib.get_close_matches(task, tasks, n=5, cutoff=0.5)
        hint = f"did you mean: {', '.join(close)}?" if close else f"e.g. {', '.join(sorted(tasks)[:8])}, ..."
        also = "" if Path(task).exists() else f"; there is no file or folder named {task!r} either"
        raise ConfigError(f"problems.task: unknown reasoning-gym task {task!r} ({len(tasks)} tasks; {hint}){also}")
    config_cls = tasks[task][1]
    knobs = {f.name for f in dataclasses.fields(config_cls)} - {"seed", "size"}
    if reserved := sorted({"seed", "size"} & set(task_config)):
        raise ConfigError(f"problems.task_config.{reserved[0]} is set by reasondistill; use problems.seed "
                          "and problems.n_train/n_eval instead")
    if unknown := sorted(set(task_config) - knobs):
        raise ConfigError(f"problems.task_config: unknown key(s) {', '.join(unknown)} for task {task!r}; "
                          f"valid keys: {', '.join(sorted(knobs))}")
    hints = typing.get_type_hints(config_cls)
    try:
        defaults = {k: json_safe(v) for k, v in dataclasses.asdict(config_cls()).items()}
    except Exception:  # noqa: BLE001 (a config with required fields: check annotations alone)
        defaults = {}
    for key, value in task_config.items():
        if key in defaults and type(value) is type(defaults[key]):
            continue  # the kind of value the task itself uses (some annotations disagree with their defaults)
        if (expected := _mismatch(value, hints.get(key))) is not None:
            raise ConfigError(f"problems.task_config.{key} must be {expected} for task {task!r}, got {value!r}")
    return config_cls


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _mismatch(value: Any, tp: Any) -> str | None:
    """What ``tp`` expects, when ``value`` (from YAML) cannot be it; ``None`` when it fits or the
    type is one we do not check. Checked here because reasoning-gym often fails only later,
    inside item generation, with an error that names no key."""
    if tp is None or tp is Any:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        found = [_mismatch(value, o) for o in options if o is not type(None)]
        return None if any(f is None for f in found) else " or ".join(f for f in found if f)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        return None if value in choices else "one of " + ", ".join(map(repr, choices))
    if tp in (int, float, bool, str):
        ok = (isinstance(value, bool) if tp is bool else
              not isinstance(value, bool) and isinstance(value, (int, float) if tp is float else tp))
        return None if ok else _NAMES[tp]
    if (origin or tp) in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return "a list"
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1 or (args and origin is tuple and tp.__args__[-1] is Ellipsis):
            bad = next((m for v in value if (m := _mismatch(v, args[0])) is not None), None)
            return None if bad is None else f"a list of {bad.removeprefix('an ').removeprefix('a ')}s"
        return None
    return None


def make_dataset(task: str, task_config: dict[str, Any], seed: int, size: int) -> Any:
    import reasoning_gym

    try:
        return reasoning_gym.create_dataset(task, seed=seed, size=size, **task_config)
    except (AssertionError, TypeError, ValueError, KeyError) as e:  # reasoning-gym validates with assert
        raise invalid_config(task, task_config, e) from None


def invalid_config(task: str, task_config: dict[str, Any], e: Exception) -> ConfigError:
    keys = ", ".join(f"{k}={v!r}" for k, v in task_config.items()) or "the task's defaults"
    return ConfigError(f"problems.task_config for task {task!r} is invalid ({keys}): "
                       f"{e or type(e).__name__}; check these values against the task's documentation")


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
