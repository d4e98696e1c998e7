"""Free-text answers: equality after :func:`..answers.normalize` (case, spaces, ``$``, full stop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..records import Problem
from .answers import clean_answer, extract_answer, normalize
from .base import Score, graded, no_answer


@dataclass(frozen=True, slots=True)
class ExactVerifier:
    name: ClassVar[str] = "exact"
    fallback_last_number: bool = True

    def check(self, problem: Problem, text: str) -> Score:
        extracted, formatted = extract_answer(text, fallback_last_number=self.fallback_last_number)
        if extracted is None:
            return no_answer(formatted)
        same = normalize(extracted) == normalize(clean_answer(problem.answer))
        return graded(1.0 if same else 0.0, extracted, formatted)
