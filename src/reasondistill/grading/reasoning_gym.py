"""reasoning-gym problems: the task's own ``score_answer(answer, entry)`` decides.

The entry is regenerated from the stored seed/size/index when possible (JSON turns tuples into
lists, and a few tasks compare tuples), else the stored ``meta["rg_entry"]`` is used. Scores are
in [0, 1]; some tasks give partial credit, and only a full score passes.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..records import Problem
from .answers import as_number, normalize
from .base import AnswerVerifier

_ENTRY_CACHE_SIZE = 4096
_entries: dict[tuple, dict[str, Any]] = {}
_entries_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def score_fn(task: str) -> Callable[[str | None, dict[str, Any]], float]:
    """``reasoning_gym.get_score_answer_fn(task)``, built once per task."""
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(task)


def task_of(problem: Problem) -> str:
    meta = problem.meta or {}
    task = meta.get("task") or (meta.get("rg_entry") or {}).get("metadata", {}).get("source_dataset")
    if not isinstance(task, str) or not task:
        raise ValueError(f"problem {problem.id!r} has no reasoning-gym task in meta['task']")
    return task


def entry_of(problem: Problem) -> dict[str, Any]:
    """The entry to hand to ``score_answer``: regenerated, else stored, else built from the problem."""
    meta = problem.meta or {}
    stored = meta.get("rg_entry")
    if not isinstance(stored, dict):
        return {"question": problem.prompt, "answer": problem.answer, "metadata": {}}
    if not all(k in meta for k in ("task", "rg_seed", "rg_size", "rg_index")):
        return stored
    key = (meta["task"], json.dumps(meta.get("task_config") or {}, sort_keys=True, default=str),
           meta["rg_seed"], meta["rg_size"], meta["rg_index"], stored.get("question"))
    with _entries_lock:
        if key in _entries:
            return _entries[key]
    try:
        from ..tasks import original_entry

        entry = original_entry(meta)
    except Exception:  # noqa: BLE001 - an old or foreign meta layout: the stored copy still scores
        entry = stored
    with _entries_lock:
        if len(_entries) >= _ENTRY_CACHE_SIZE:
            _entries.clear()
        _entries[key] = entry
    return entry


@dataclass(frozen=True, slots=True)
class ReasoningGymVerifier(AnswerVerifier):
    """Scores with the reasoning-gym task named in ``problem.meta['task']``."""

    name: ClassVar[str] = "reasoning_gym"

    @staticmethod
    def claims(problem: Problem) -> bool:
        """A reasoning-gym problem: its entry is stored, or its task is a reasoning-gym task."""
        meta = problem.meta or {}
        if isinstance(meta.get("rg_entry"), dict):
            return True
        if not isinstance(meta.get("task"), str):
            return False
        from reasoning_gym.factory import DATASETS

        return meta["task"] in DATASETS

    def grade(self, problem: Problem, extracted: str) -> float:
        fn, entry = score_fn(task_of(problem)), entry_of(problem)
        score = float(fn(extracted, entry) or 0.0)
        if score < 1.0 and as_number(extracted) is not None and (plain := normalize(extracted)) != extracted:
            score = max(score, float(fn(plain, entry) or 0.0))  # "1,234" / "+5" / "3.0" for a numeric oracle
        return score
