"""Math answers: exact numeric comparison first, then math-verify (sympy) equivalence.

math-verify's own timeouts use ``signal.alarm``, which fails outside the main thread, so they
are disabled here (``parsing_timeout=None``, ``timeout_seconds=None``); :func:`..base.score_text`
enforces a wall-clock limit instead. A thread cannot interrupt C code that holds the GIL, and
sympy evaluating a power tower such as ``9^{9^{9}}`` does exactly that, so answers whose
expressions would need astronomically large integers are screened out first (``too_complex``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..records import Problem
from .answers import as_number, clean_answer, is_integer_literal, last_boxed, normalize
from .base import AnswerVerifier, TooComplex, looks_mathematical

MAX_ANSWER_CHARS = 500  # longer "answers" are not handed to sympy
MAX_EXPONENT = 1e6  # |exponent| above this (with |base| > 1) is too big to evaluate safely
MAX_FACTORIAL_ARG = 1e4

# \binom{100000}{..}, 123456!, \frac{..}{..}! -- screened before parsing, which evaluates them
_HUGE_COMBINATORIAL = re.compile(r"binom\s*\{?\s*\d{5,}|choose\s*\{?\s*\d{5,}|\d{5,}\s*!")


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its timeout is off; ours is on, so the warning misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def _parse(answer: str) -> list[Any]:
    from math_verify import parse

    inner = answer.strip().strip("$").strip()
    return parse(f"${inner}$", parsing_timeout=None) or parse(inner, parsing_timeout=None)


def _magnitude(expr: Any) -> float | None:
    try:
        return abs(complex(expr.evalf(8)))
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None


def too_big(parsed: list[Any]) -> bool:
    """True when a parsed expression contains a power or factorial too large to evaluate."""
    import sympy

    combinatorial = (sympy.factorial, sympy.factorial2, sympy.binomial, sympy.subfactorial,
                     sympy.RisingFactorial, sympy.FallingFactorial)
    for expr in parsed:
        if not isinstance(expr, sympy.Basic):
            continue
        for node in sympy.preorder_traversal(expr):
            if isinstance(node, sympy.Pow) and node.exp.is_number:
                base = _magnitude(node.base) if node.base.is_number else None
                if base is not None and base <= 1:
                    continue
                exp = _magnitude(node.exp)
                if exp is None or exp > MAX_EXPONENT:
                    return True
            elif isinstance(node, combinatorial):
                for arg in node.args:
                    if arg.is_number and ((m := _magnitude(arg)) is None or m > MAX_FACTORIAL_ARG):
                        return True
    return False


@dataclass(frozen=True, slots=True)
class MathVerifier(AnswerVerifier):
    """Numeric/LaTeX answers: ``3/4`` == ``\\frac{3}{4}`` == ``0.75``; ``1,234`` == ``1234``."""

    name: ClassVar[str] = "math"

    @staticmethod
    def claims(problem: Problem) -> bool:
        return looks_mathematical(problem.answer)

    def grade(self, problem: Problem, extracted: str) -> float:
        return grade(problem.answer, extracted)


def grade(gold: str, answer: str) -> float:
    """1.0 when ``answer`` is mathematically equal to ``gold``, else 0.0 (raises :class:`TooComplex`)."""
    if "\\boxed" in gold or "\\fbox" in gold:
        gold = last_boxed(gold) or gold
    gold = clean_answer(gold)
    g_num, a_num = as_number(gold), as_number(answer)
    if g_num is not None and a_num is not None:
        if g_num == a_num:
            return 1.0
        if is_integer_literal(gold) and is_integer_literal(answer):
            return 0.0  # two different integers: no need for sympy
    if normalize(gold) == normalize(answer):
        return 1.0
    if len(answer) > MAX_ANSWER_CHARS or _HUGE_COMBINATORIAL.search(answer) or _HUGE_COMBINATORIAL.search(gold):
        raise TooComplex
    from math_verify import verify

    gold_parsed, answer_parsed = _parse(gold), _parse(answer)
    if not gold_parsed or not answer_parsed:
        return 0.0
    if too_big(gold_parsed) or too_big(answer_parsed):
        raise TooComplex
    return 1.0 if verify(gold_parsed, answer_parsed, timeout_seconds=None) else 0.0
