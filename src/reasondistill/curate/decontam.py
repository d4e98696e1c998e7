"""Per-problem policy: drop training problems whose prompt overlaps a held-out problem's (reason
``contaminated``), when ``curate.decontaminate.ngram`` is set.

The problems stage already keeps exact held-out prompts out of training; this catches paraphrases
and near-copies. Prompts are lower-cased word sequences (``\\w+``); a training prompt is
contaminated when the share of its word ``ngram``-grams found in ONE held-out prompt reaches
``min_overlap`` (a prompt shorter than ``ngram`` words is one gram, so it matches a held-out prompt
of the same words). The held-out problems are ``curate.decontaminate.eval_problems`` or the run
folder's ``problems/eval.jsonl``. Every trace of a contaminated problem is dropped, correct and
incorrect; the manifest report lists each removed problem with its closest held-out problem and
the overlap, and the problem is left out of ``selected_problems.jsonl``.

Templated tasks (every prompt shares its wording) need a larger ``ngram`` or ``min_overlap``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..config import CurateConfig
from ..errors import ConfigError
from ..io import read_records
from ..layout import Layout
from ..records import Problem, Trace, Verdict
from .base import NEGATIVES, TRAIN, CurateContext

_WORD = re.compile(r"\w+")


@dataclass
class DecontaminateConfig:
    """``curate.decontaminate``: drop training problems whose prompt shares word n-grams with a
    held-out problem's (reason ``contaminated``). Off while ``ngram`` is None."""

    ngram: int | None = None  # n of the word n-grams (8-13 is usual; prompts shorter than n are one gram)
    min_overlap: float = 0.5  # share of a training prompt's n-grams found in one held-out prompt
    eval_problems: str | None = None  # held-out problems file; None: the run folder's problems/eval.jsonl

    def __post_init__(self) -> None:
        if self.ngram is not None and self.ngram < 1:
            raise ConfigError("curate.decontaminate.ngram must be >= 1")
        if not 0 < self.min_overlap <= 1:
            raise ConfigError("curate.decontaminate.min_overlap must be in (0, 1]")


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def eval_path(cfg: CurateConfig, layout: Layout) -> Path:
    return Path(cfg.decontaminate.eval_problems) if cfg.decontaminate.eval_problems else layout.eval_problems


@dataclass
class Decontaminate:
    ngram: int
    min_overlap: float
    source: Path | None = None
    contaminated: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_eval: int = 0
    name: ClassVar[str] = "contaminated"
    scope: ClassVar[tuple[str, ...]] = (TRAIN, NEGATIVES)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Decontaminate | None:
        d = cfg.decontaminate
        return None if d.ngram is None else cls(d.ngram, d.min_overlap,
                                                Path(d.eval_problems) if d.eval_problems else None)

    @classmethod
    def depends(cls, cfg: CurateConfig, recipe: Any, layout: Layout) -> dict[str, Any]:
        return {} if cfg.decontaminate.ngram is None else {"inputs": [eval_path(cfg, layout)]}

    def find(self, train: dict[str, Problem], held_out: list[Problem]) -> dict[str, dict[str, Any]]:
        """``{train problem id: {eval_id, overlap}}`` for the contaminated training problems."""
        index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, p in enumerate(held_out):
            for gram in ngrams(p.prompt, self.ngram):
                index[gram].append(i)
        found = {}
        for pid, problem in train.items():
            grams = ngrams(problem.prompt, self.ngram)
            hits: Counter = Counter(i for gram in grams for i in index.get(gram, ()))
            if not hits:
                continue
            best, shared = max(hits.items(), key=lambda kv: (kv[1], -kv[0]))
            overlap = shared / len(grams)
            if overlap >= self.min_overlap:
                found[pid] = {"eval_id": held_out[best].id, "overlap": round(overlap, 4)}
        return found

    def prepare(self, ctx: CurateContext) -> None:
        path = self.source or ctx.layout.eval_problems
        if not Path(path).exists():
            raise ConfigError(f"curate.decontaminate needs the held-out problems, and {path} does not exist "
                              "(run the problems stage, or set curate.decontaminate.eval_problems)")
        held_out = read_records(path, Problem, allow_empty=True)
        self.n_eval = len(held_out)
        self.contaminated = self.find(ctx.problems, held_out)

    def keeps_problem(self, problem_id: str) -> bool:
        return problem_id not in self.contaminated

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        if problem.id in self.contaminated:
            return [], [(t, self.name) for t in traces]
        return list(traces), []

    def report(self) -> dict[str, Any]:
        return {"ngram": self.ngram, "min_overlap": self.min_overlap, "eval_problems": self.n_eval,
                "removed": [{"problem_id": pid, **info} for pid, info in self.contaminated.items()]}
