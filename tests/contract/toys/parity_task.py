"""A toy task with a program teacher, in one file: seeded "even or odd?" problems, their verifier,
the solver that writes the rationale, and the question's prompt format (one row of ``TASKS``)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from reasondistill.config import ProblemsConfig
from reasondistill.problems.base import Loaded, split_problems
from reasondistill.records import Problem
from reasondistill.grading.base import AnswerVerifier

PROMPT = "Parity check. {question}\nEnd with 'Answer: even' or 'Answer: odd'."


def load(cfg: ProblemsConfig) -> Loaded:
    rng = random.Random(cfg.seed)
    numbers = rng.sample(range(10, 1000), (cfg.n_train or 0) + cfg.n_eval)
    pool = (Problem(f"parity-{n}", "toy:parity", f"Is {n} even or odd?", "even" if n % 2 == 0 else "odd",
                    meta={"task": "parity", "n": n}) for n in numbers)
    skipped: Counter = Counter()
    train, evals = split_problems(pool, cfg.n_train, cfg.n_eval, skipped, drain=False)
    return Loaded(train, evals, skipped)


@dataclass(frozen=True, slots=True)
class ParityVerifier(AnswerVerifier):
    name: ClassVar[str] = "parity"

    def grade(self, problem: Problem, extracted: str) -> float:
        return float(extracted.strip().strip(".").lower() == problem.answer)


def solve(problem: Problem) -> tuple[str, str]:
    n = problem.meta["n"]
    return f"{n} = 2 * {n // 2} + {n % 2}", "even" if n % 2 == 0 else "odd"
