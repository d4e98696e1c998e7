"""Stage 1 contract: a source yields problems, ``run`` splits and writes them.

A source module exposes ``load(cfg) -> Loaded`` (see the table in ``__init__``). It owns
reading and parsing; this file owns what every source shares: the train/eval split with no
prompt overlap, skip bookkeeping, and the resumable write with its manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable
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
    return "reasoning_gym" if cfg.source == "reasoning_gym" else "file"


def input_paths(cfg: ProblemsConfig) -> list[Path]:
    """The files whose content the outputs depend on (none for generated problems)."""
    if source_kind(cfg) != "file":
        return []
    return [Path(p) for p in (cfg.source, cfg.eval_source) if p]


def load(cfg: ProblemsConfig) -> Loaded:
    """Dispatch to the source named in the ``SOURCES`` table."""
    from ..registry import lookup
    from . import SOURCES

    return lookup(SOURCES, source_kind(cfg), "problem source")(cfg)


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
    src = cfg.source if source_kind(cfg) == "file" else f"task {cfg.task}"
    log.warning("problems: asked for %s: %s has no more usable rows%s (lower --n-train/--n-eval, or add rows)",
                asked, src, why)


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
