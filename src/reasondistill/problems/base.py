"""Stage 1 contract: a source yields problems, ``run`` splits and writes them.

A source module exposes ``load(cfg) -> Loaded`` (see the table in ``__init__``). It owns
reading and parsing; this file owns what every source shares: the train/eval split with no
prompt overlap, skip bookkeeping, and the resumable write with its manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import io
from ..config import ProblemsConfig
from ..errors import InputError
from ..layout import Layout
from ..records import Problem

log = logging.getLogger(__name__)

STAGE = "problems"


@dataclass(frozen=True, slots=True)
class Source:
    """A row of ``SOURCES``. ``paths``: this row reads every ``problems.source`` that is not a row name
    (a path; it and ``eval_source`` are the stage's inputs). ``tasks``: this row generates
    ``problems.task``, and a task's row in ``reasondistill.tasks.TASKS`` names the loader to use."""

    load: str  # "module:function": ProblemsConfig -> Loaded
    paths: bool = False
    tasks: bool = False


@dataclass
class Loaded:
    """What a source hands back: the two splits plus rows dropped per reason."""

    train: list[Problem]
    eval: list[Problem]
    skipped: Counter = field(default_factory=Counter)


class RowError(InputError):
    """One bad input row. ``reason`` is the key it is counted under when rows are skipped."""

    def __init__(self, reason: str, message: str, **where: Any) -> None:
        self.reason = reason
        self.detail = message  # the message without the file:line prefix
        super().__init__(message, **where)


def normalize_prompt(text: str) -> str:
    """Key for overlap checks: case and whitespace differences don't make a new problem."""
    return " ".join(text.split()).casefold()


def split_problems(train_pool: Iterable[Problem], n_train: int | None, n_eval: int, skipped: Counter,
                   *, eval_pool: Iterable[Problem] | None = None, drain: bool = True
                   ) -> tuple[list[Problem], list[Problem]]:
    """Take ``n_eval`` distinct problems for eval, then up to ``n_train`` for train.

    With no ``eval_pool`` both come from one pool, eval first. Train rows whose prompt is in
    eval are dropped as ``overlap_with_eval``; repeated prompts as ``duplicate_prompt``.
    ``drain`` keeps reading past a full train set so the skip counts cover the whole pool;
    generators pass ``drain=False``.
    """
    train_it = iter(train_pool)
    eval_it = train_it if eval_pool is None else iter(eval_pool)
    evals: list[Problem] = []
    eval_keys: set[str] = set()
    while len(evals) < n_eval and (p := next(eval_it, None)) is not None:
        key = normalize_prompt(p.prompt)
        if key in eval_keys:
            skipped["duplicate_prompt"] += 1
            continue
        eval_keys.add(key)
        evals.append(p)
    train: list[Problem] = []
    train_keys: set[str] = set()
    for p in train_it:
        full = n_train is not None and len(train) >= n_train
        if full and not drain:
            break
        key = normalize_prompt(p.prompt)
        if key in eval_keys:
            skipped["overlap_with_eval"] += 1
        elif key in train_keys:
            skipped["duplicate_prompt"] += 1
        else:
            train_keys.add(key)
            if not full:
                train.append(p)
    return train, evals


def source_kind(cfg: ProblemsConfig) -> str:
    """The ``SOURCES`` row that reads ``cfg``: the one ``problems.source`` names, else the path row."""
    from . import SOURCES

    return cfg.source if cfg.source in SOURCES else next(k for k, row in SOURCES.items() if row.paths)


def input_paths(cfg: ProblemsConfig) -> list[Path]:
    """The files whose content the outputs depend on (none for generated problems)."""
    from . import SOURCES

    if not SOURCES[source_kind(cfg)].paths:
        return []
    return [Path(p) for p in (cfg.source, cfg.eval_source) if p]


def loader(cfg: ProblemsConfig) -> Callable[[ProblemsConfig], Loaded]:
    """The load function of ``cfg``'s source row, or of its task's row for the row that generates tasks."""
    from ..registry import load as load_target
    from ..tasks import TASKS
    from . import SOURCES

    row = SOURCES[source_kind(cfg)]
    target = TASKS[cfg.task].source if row.tasks and cfg.task in TASKS else row.load
    return load_target(target)


def load(cfg: ProblemsConfig) -> Loaded:
    """Dispatch to the source row (or task row) that reads ``cfg``."""
    return loader(cfg)(cfg)


def describe(cfg: ProblemsConfig) -> str:
    """How warnings name where the problems came from: the path, the task, or the named source."""
    from . import SOURCES

    row = SOURCES[source_kind(cfg)]
    return cfg.source if row.paths else f"task {cfg.task}" if row.tasks else f"source {cfg.source}"


def _check_unique_ids(loaded: Loaded) -> None:
    seen: set[str] = set()
    for p in (*loaded.eval, *loaded.train):
        if p.id in seen:
            raise InputError(f"problem id {p.id!r} appears twice (train and eval ids must be unique)",
                             file=p.meta.get("file"), line=p.meta.get("line"), field="id")
        seen.add(p.id)


def _warn_shortfall(cfg: ProblemsConfig, shortfall: dict[str, dict[str, int]], skipped: dict[str, int]) -> None:
    """Fewer problems than asked for is allowed (a small file is a fine start) but never silent."""
    if not shortfall:
        return
    asked = ", ".join(f"{k}={v['wanted']} but got {v['got']}" for k, v in shortfall.items())
    why = f"; rows skipped: {', '.join(f'{r} {n}' for r, n in skipped.items())}" if skipped else ""
    log.warning("problems: asked for %s: %s has no more usable rows%s (lower --n-train/--n-eval, or add rows)",
                asked, describe(cfg), why)


def run(recipe: Any, layout: Layout) -> dict:
    """Write the train and eval problem files and the manifest; return the manifest.

    A finished run with the same config and input hashes is returned as is (resume); a shortfall
    against ``n_train``/``n_eval`` is warned about either way.
    """
    cfg: ProblemsConfig = recipe.problems
    train_path, eval_path = layout.train_problems, layout.eval_problems
    out_dir = layout.stage_dir(STAGE)

    def body() -> dict:
        loaded = load(cfg)
        _check_unique_ids(loaded)
        io.write_jsonl(train_path, loaded.train)
        io.write_jsonl(eval_path, loaded.eval)
        outputs = {"files": [train_path.name, eval_path.name], "n_train": len(loaded.train),
                   "n_eval": len(loaded.eval), "skipped": dict(sorted(loaded.skipped.items()))}
        wanted = {"n_train": cfg.n_train, "n_eval": cfg.n_eval}
        if shortfall := {k: {"wanted": wanted[k], "got": outputs[k]} for k in wanted
                         if wanted[k] is not None and outputs[k] < wanted[k]}:
            outputs["shortfall"] = shortfall
        return outputs

    manifest = io.cached_stage(out_dir, stage=STAGE, config=dataclasses.asdict(cfg), inputs=input_paths(cfg),
                               body=body)
    _warn_shortfall(cfg, manifest["outputs"].get("shortfall", {}), manifest["outputs"].get("skipped", {}))
    return manifest
