"""Free-text answers: equality after :func:`..answers.normalize` (case, spaces, ``$``, full stop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem
from .answers import clean_answer, normalize
from .base import AnswerVerifier


@dataclass(frozen=True, slots=True)
class ExactVerifier(AnswerVerifier):
    name: ClassVar[str] = "exact"

    @staticmethod
    def claims(problem: Problem) -> bool:
        return True  # the last resort of "auto"

    def grade(self, problem: Problem, extracted: str) -> float:
        return float(normalize(extracted) == normalize(clean_answer(problem.answer)))
