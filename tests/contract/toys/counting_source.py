"""A toy problem source (``problems.source: counting``): "How many letters in WORD?" for seeded
made-up words; one file plus one row of ``SOURCES``."""

from __future__ import annotations

import random
from collections import Counter

from reasondistill.config import ProblemsConfig
from reasondistill.problems.base import Loaded, split_problems
from reasondistill.records import Problem


def load(cfg: ProblemsConfig) -> Loaded:
    rng = random.Random(cfg.seed)

    def items():
        for i in range(10_000):
            word = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 9)))
            yield Problem(f"counting-{i}", "toy:counting", f"How many letters are in '{word}'?", str(len(word)))

    skipped: Counter = Counter()
    train, evals = split_problems(items(), cfg.n_train, cfg.n_eval, skipped, drain=False)
    return Loaded(train, evals, skipped)
