"""Arithmetic expressions (reasoning-gym chain_sum, basic_arithmetic), reduced one
operation at a time: innermost brackets first, then * and /, then + and -, left to right.

Each line rewrites the whole expression, so the student sees every intermediate value.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..records import Problem

_TOKEN = re.compile(r"\s*(\d+\.\d+|\d+|[-+*/()])")


def tokenize(expr: str) -> list:
    tokens: list = []
    pos = 0
    expr = expr.strip().rstrip("=").strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot parse expression at {expr[pos:]!r}")
        tok = m.group(1)
        pos = m.end()
        if tok[0].isdigit():
            tokens.append(Fraction(tok))
        elif tok == "-" and (not tokens or tokens[-1] in ("+", "-", "*", "/", "(")):
            tokens.append("neg")  # unary minus binds to the next number
        else:
            tokens.append(tok)
    return _fold_negations(tokens)


def _fold_negations(tokens: list) -> list:
    out: list = []
    for tok in tokens:
        if out and out[-1] == "neg" and isinstance(tok, Fraction):
            out[-1] = -tok
        else:
            out.append(tok)
    return out


def fmt(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    as_float = float(x)
    return f"{as_float:.6g}" if len(f"{as_float:.6g}") < 12 else str(x)


def render(tokens: list) -> str:
    out = []
    for tok in tokens:
        if isinstance(tok, Fraction):
            out.append(fmt(tok))
        elif tok == "neg":
            out.append(" -" if out and not out[-1].endswith(" ") else "-")
        elif tok in "()":
            out.append(tok)
        else:
            out.append(f" {tok} ")
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", "".join(out))).strip()


def _reduce_once(tokens: list) -> list:
    """Apply exactly one operation (or drop one pair of brackets) and return the new tokens."""
    # innermost bracket pair
    if "(" in tokens:
        close = tokens.index(")")
        open_ = max(i for i in range(close) if tokens[i] == "(")
        inner = tokens[open_ + 1 : close]
        inner = inner if len(inner) == 1 else _reduce_once(inner)
        if len(inner) == 1:  # a bracket around a single value disappears in the same step
            if open_ > 0 and tokens[open_ - 1] == "neg":  # -( x ) becomes -x
                return tokens[: open_ - 1] + [-inner[0]] + tokens[close + 1 :]
            return tokens[:open_] + inner + tokens[close + 1 :]
        return tokens[: open_ + 1] + inner + tokens[close:]
    for ops in (("*", "/"), ("+", "-")):
        for i, tok in enumerate(tokens):
            if tok in ops and isinstance(tokens[i - 1], Fraction) and isinstance(tokens[i + 1], Fraction):
                a, b = tokens[i - 1], tokens[i + 1]
                val = {"*": a * b, "/": a / b if b else None, "+": a + b, "-": a - b}[tok]
                if val is None:
                    raise ZeroDivisionError("division by zero")
                return tokens[: i - 1] + [val] + tokens[i + 2 :]
    raise ValueError("expression does not reduce")


def steps(expr: str) -> tuple[list[str], Fraction]:
    tokens = tokenize(expr)
    lines = [render(tokens)]
    while len(tokens) > 1:
        tokens = _reduce_once(tokens)
        lines.append(render(tokens))
    return lines, tokens[0]


def solve(problem: Problem) -> tuple[str, str]:
    entry = problem.meta.get("rg_entry", {})
    expr = entry.get("metadata", {}).get("expression") or problem.meta.get("expression")
    if not expr:
        raise ValueError(f"problem {problem.id}: no arithmetic expression in its metadata")
    lines, value = steps(expr)
    body = lines[0] + "".join(f"\n= {line}" for line in lines[1:])
    return body, fmt(value)
