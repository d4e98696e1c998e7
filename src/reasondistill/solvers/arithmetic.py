"""Arithmetic expressions (reasoning-gym chain_sum, basic_arithmetic), reduced one
operation at a time: innermost brackets first, then * and /, then + and -, left to right.

Each line rewrites the whole expression, so the student sees every intermediate value.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..records import Problem
from .styles import Calc, Op, Style

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


def _reduce_once(tokens: list, calc: Calc | None = None) -> list:
    """Apply exactly one operation (or drop one pair of brackets) and return the new tokens;
    ``calc`` does (and records) the arithmetic."""
    calc = calc or Calc(n_ops=0)
    # innermost bracket pair
    if "(" in tokens:
        close = tokens.index(")")
        open_ = max(i for i in range(close) if tokens[i] == "(")
        inner = tokens[open_ + 1 : close]
        inner = inner if len(inner) == 1 else _reduce_once(inner, calc)
        if len(inner) == 1:  # a bracket around a single value disappears in the same step
            if open_ > 0 and tokens[open_ - 1] == "neg":  # -( x ) becomes -x
                return tokens[: open_ - 1] + [-inner[0]] + tokens[close + 1 :]
            return tokens[:open_] + inner + tokens[close + 1 :]
        return tokens[: open_ + 1] + inner + tokens[close:]
    for ops in (("*", "/"), ("+", "-")):
        for i, tok in enumerate(tokens):
            if tok in ops and isinstance(tokens[i - 1], Fraction) and isinstance(tokens[i + 1], Fraction):
                return tokens[: i - 1] + [calc(tokens[i - 1], tok, tokens[i + 1])] + tokens[i + 2 :]
    raise ValueError("expression does not reduce")


def n_operations(tokens: list) -> int:
    return sum(1 for t in tokens if isinstance(t, str) and t in "+-*/")


def steps(expr: str, slip: int | None = None) -> tuple[list[str], Fraction]:
    """Every intermediate form of ``expr`` (the first is ``expr`` itself) and the final value;
    with a ``slip`` seed, one operation goes wrong (see :mod:`.styles`)."""
    lines, value, _ = _reduced(tokenize(expr), slip)
    return lines, value


def _reduced(tokens: list, slip: int | None) -> tuple[list[str], Fraction, Calc]:
    calc = Calc(n_ops=n_operations(tokens), slip=slip)
    lines = [render(tokens)]
    while len(tokens) > 1:
        tokens = _reduce_once(tokens, calc)
        lines.append(render(tokens))
    return lines, tokens[0], calc


def _expression(problem: Problem) -> str:
    entry = problem.meta.get("rg_entry", {})
    expr = entry.get("metadata", {}).get("expression") or problem.meta.get("expression")
    if not expr:
        raise ValueError(f"problem {problem.id}: no arithmetic expression in its metadata")
    return expr


STYLES = ("steps", "terse", "verbose", "varied", "digits", "columns")


def solve(problem: Problem, style: Style = Style()) -> tuple[str, str]:
    """``(reasoning, answer)`` for ``problem`` written in ``style`` (see :mod:`.styles`)."""
    tokens = tokenize(_expression(problem))
    if style.name == "varied":
        return _varied(tokens, style)
    if style.name == "digits" and (terms := _chain(tokens)) and all(t.denominator == 1 for t in terms):
        return _digits(terms, style.slip)
    lines, value, calc = _reduced(list(tokens), style.slip)
    if style.name == "terse":
        return ", ".join(_op(o) for o in calc.ops) or render(tokens), fmt(value)
    if style.name == "columns":
        return _columns(lines, calc), fmt(value)
    if style.name == "verbose":
        return _verbose(tokens, lines, calc, value), fmt(value)
    return lines[0] + "".join(f"\n= {line}" for line in lines[1:]), fmt(value)


def _digits(terms: list[Fraction], slip: int | None) -> tuple[str, str]:
    """``steps`` with every addition or subtraction of a number of two or more digits split into its
    tens-and-above part and its last digit (``98 + 93`` -> ``98 + 90 + 3`` -> ``188 + 3`` -> ``191``),
    so each written operation moves one place value. A 135M student's errors on the default task
    were single steps of two-digit arithmetic (README, part 7); this spells those steps out."""
    parts = []  # (sign, amounts): each later term, split into at most two amounts of the same sign
    for t in terms[1:]:
        m = abs(t)
        parts.append(("+" if t >= 0 else "-", [m - m % 10, m % 10] if m >= 10 and m % 10 else [m]))
    calc = Calc(n_ops=sum(len(a) for _, a in parts), slip=slip)

    def line(acc: Fraction, pending: list[tuple[str, list[Fraction]]]) -> str:
        return " ".join([fmt(acc)] + [f"{sign} {fmt(a)}" for sign, amounts in pending for a in amounts])

    acc = terms[0]
    lines = [line(acc, [(sign, [sum(amounts)]) for sign, amounts in parts])]
    for i, (sign, amounts) in enumerate(parts):
        later = [(sg, [sum(am)]) for sg, am in parts[i + 1:]]
        if len(amounts) == 2:  # write the split before using it
            lines.append(line(acc, [(sign, amounts)] + later))
        for j, a in enumerate(amounts):
            acc = calc(acc, sign, a)
            lines.append(line(acc, [(sign, amounts[j + 1:])] + later))
    return lines[0] + "".join(f"\n= {ln}" for ln in lines[1:]), fmt(acc)


_PLACES = ("ones", "tens", "hundreds", "thousands")


def _columns(lines: list[str], calc: Calc) -> str:
    """``steps`` with each addition or subtraction of integers worked on its own line before the
    rewrite that uses it, column by column with the carry or borrow written out
    (``98 + 93: ones 8 + 3 = 11, carry 1; tens 9 + 9 + 1 = 19; so 191``), so every written step is
    a one-digit fact. Operations on one-digit numbers are written as the fact itself; others
    (``*``, ``/``, fractions) as ``steps`` does. A slipped operation is worked correctly and then
    concluded wrongly, as a careless solver copies a result."""
    out = [lines[0]]
    for o, after in zip(calc.ops, lines[1:]):
        if (work := _worked(o)) is not None:
            out.append(work)
        out.append(f"= {after}")
    return "\n".join(out)


def _worked(o: Op) -> str | None:
    a, b = o.a, o.b
    if o.op not in "+-" or a.denominator != 1 or b.denominator != 1 or b < 0:
        return None
    a, b, said = int(a), int(b), fmt(o.result)
    head = f"{a} {o.op} {b}"
    sign, x, op, y = _unsigned(a, o.op, b)
    inner = f"{x} {op} {y}"
    if max(x, y) < 10:  # a one-digit fact, with its sign rule where a term or the result is below zero
        return f"{head} = {said}" if inner == head else f"{head} = {sign}({inner}) = {said}"
    work = f"{(_add_columns if op == '+' else _sub_columns)(x, y)}; so {said}"
    return f"{head}: {work}" if inner == head else f"{head} = {sign}{f'({inner})' if sign else inner}. {inner}: {work}"


def _unsigned(a: int, op: str, b: int) -> tuple[str, int, str, int]:
    """``(sign, x, op, y)`` with ``a op b == sign(x op y)``, ``x, y >= 0`` and ``x >= y`` for a
    subtraction: what is left to work in columns once the sign rule is written."""
    if a >= 0:
        return ("", a, op, b) if op == "+" or a >= b else ("-", b, "-", a)
    if op == "-":  # -x - b = -(x + b)
        return "-", -a, "+", b
    return ("", b, "-", -a) if b >= -a else ("-", -a, "-", b)


def _digits_of(n: int, width: int) -> list[int]:
    return [(n // 10 ** i) % 10 for i in range(width)]


def _place(i: int) -> str:
    return _PLACES[i] if i < len(_PLACES) else f"10^{i}"


def _add_columns(x: int, y: int) -> str:
    """Column addition of two non-negative integers, ones first; the top column writes its whole sum."""
    width = max(len(str(x)), len(str(y)))
    dx, dy = _digits_of(x, width), _digits_of(y, width)
    parts, carry = [], 0
    for i in range(width):
        terms = [d for d in (dx[i], dy[i]) if d or i < min(len(str(x)), len(str(y)))] + ([carry] if carry else [])
        total = dx[i] + dy[i] + carry
        text = f"{_place(i)} " + (" + ".join(map(str, terms)) + f" = {total}" if len(terms) > 1 else str(total))
        carry = total // 10 if i < width - 1 else 0
        parts.append(text + (f", carry {carry}" if carry else ""))
    return "; ".join(parts)


def _sub_columns(x: int, y: int) -> str:
    """Column subtraction ``x - y`` of non-negative integers with ``x >= y``, ones first; a borrow
    is taken where the column's top digit is too small and paid back in the next column."""
    width, y_width = len(str(x)), len(str(y))
    dx, dy = _digits_of(x, width), _digits_of(y, width)
    parts, borrow = [], 0
    for i in range(width):
        terms = [dx[i]] + ([dy[i]] if i < y_width else []) + ([1] if borrow else [])
        rest = sum(terms[1:])
        if len(terms) == 1:
            parts.append(f"{_place(i)} {dx[i]}")
            borrow = 0
        elif dx[i] >= rest:
            parts.append(f"{_place(i)} " + " - ".join(map(str, terms)) + f" = {dx[i] - rest}")
            borrow = 0
        else:
            parts.append(f"{_place(i)} " + " - ".join(map(str, terms)) + ": borrow, "
                         + " - ".join(map(str, [dx[i] + 10] + terms[1:])) + f" = {dx[i] + 10 - rest}")
            borrow = 1
    return "; ".join(parts)


def _op(o: Op) -> str:
    return f"{_signed(o.a)} {o.op} {_signed(o.b)} = {fmt(o.result)}"


def _signed(x: Fraction) -> str:
    return f"({fmt(x)})" if x < 0 else fmt(x)


_INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}


def _verbose(tokens: list, lines: list[str], calc: Calc, value: Fraction) -> str:
    """The long rationale: the plan, each step named with the expression it leaves, a check of
    every step backwards (undoing it from its written result), and a conclusion."""
    order = "from left to right" if _chain(tokens) else "innermost brackets first, then * and /, then + and -"
    out = [f"We need the value of {lines[0]}. We work one operation at a time, {order}."]
    for i, (o, after) in enumerate(zip(calc.ops, [ln for ln in lines[1:] if ln]), 1):
        out.append(f"Step {i}: {_op(o)}, so the expression becomes {after}.")
    if calc.ops:
        checks = [f"{_signed(o.result)} {_INVERSE[o.op]} {_signed(o.b)} = {fmt(o.a)}"
                  for o in reversed(calc.ops) if not (o.op == "*" and o.b == 0)]
        out.append("Check each step backwards: " + ", ".join(checks) + ".")
    out.append(f"Every step checks out, so the value is {fmt(value)}.")
    return "\n".join(out)


def _chain(tokens: list) -> list[Fraction] | None:
    """The signed terms of a plain sum/difference (``12 - 5 + 3`` -> ``[12, -5, 3]``), else ``None``."""
    if not tokens or len(tokens) % 2 == 0:
        return None
    terms = [tokens[0]]
    for op, b in zip(tokens[1::2], tokens[2::2]):
        if op not in ("+", "-") or not isinstance(b, Fraction):
            return None
        terms.append(b if op == "+" else -b)
    return terms if all(isinstance(t, Fraction) for t in terms) else None


def _add(calc: Calc, acc: Fraction, term: Fraction) -> Fraction:
    """``acc + term`` written the way a person would: ``7 - 5`` rather than ``7 + (-5)``."""
    return calc(acc, "-", -term) if term < 0 else calc(acc, "+", term)


def _sum(calc: Calc, terms: list[Fraction]) -> Fraction:
    acc = terms[0]
    for t in terms[1:]:
        acc = _add(calc, acc, t)
    return acc


def _lines(calc: Calc, start: int) -> list[str]:
    return [_op(o) for o in calc.ops[start:]]


def _left_to_right(terms: list[Fraction], calc: Calc) -> tuple[list[str], Fraction]:
    value = _sum(calc, terms)
    return ["From left to right:"] + _lines(calc, 0), value


def _signs_apart(terms: list[Fraction], calc: Calc) -> tuple[list[str], Fraction]:
    plus, minus = [t for t in terms if t >= 0], [-t for t in terms if t < 0]
    out = []
    pos = _sum(calc, plus) if plus else Fraction(0)
    out.append("Add the positive terms: " + (", ".join(_lines(calc, 0)) if len(plus) > 1 else fmt(pos)) + ".")
    if not minus:
        return out + ["There is nothing to subtract."], pos
    mark = len(calc.ops)
    neg = _sum(calc, minus)
    out.append("Add the amounts to subtract: " + (", ".join(_lines(calc, mark)) if len(minus) > 1 else fmt(neg)) + ".")
    mark = len(calc.ops)
    value = calc(pos, "-", neg)
    return out + ["Subtract: " + _lines(calc, mark)[0] + "."], value


def _right_to_left(terms: list[Fraction], calc: Calc) -> tuple[list[str], Fraction]:
    acc = terms[-1]
    for t in reversed(terms[:-1]):
        acc = calc(t, "-", -acc) if acc < 0 else calc(t, "+", acc)
    return [f"From right to left, starting with {fmt(terms[-1])}:"] + _lines(calc, 0), acc


def _place_value(terms: list[Fraction], calc: Calc) -> tuple[list[str], Fraction]:
    """Last digits and the rest summed apart, then together (integers only)."""
    rest = [Fraction(int(t / abs(t)) * (abs(t) - abs(t) % 10)) if t else Fraction(0) for t in terms]
    digits = [t - r for t, r in zip(terms, rest)]
    high = _sum(calc, rest)
    mark = len(calc.ops)
    low = _sum(calc, digits)
    mark2 = len(calc.ops)
    value = _add(calc, high, low)
    return ["Split each number into its last digit and the rest.",
            "The rest: " + ", ".join(_lines(calc, 0)[:mark]) + ".",
            "The last digits: " + ", ".join(_lines(calc, mark)[: mark2 - mark]) + ".",
            "Together: " + _lines(calc, mark2)[0] + "."], value


_VARIANTS = (_left_to_right, _signs_apart, _right_to_left, _place_value)


def _n_ops(variant, terms: list[Fraction]) -> int:
    probe = Calc(n_ops=0)
    variant(terms, probe)
    return len(probe.ops)


def _varied(tokens: list, style: Style) -> tuple[str, str]:
    """One of several distinct correct rationales, by ``style.variant``; an expression that is not
    a plain sum of integers has two: the rewriting and the operation list."""
    terms = _chain(tokens)
    variants = _VARIANTS if terms and len(terms) > 1 and all(t.denominator == 1 for t in terms) else ()
    if not variants:
        name = ("steps", "terse")[style.variant % 2]
        return solve_tokens(tokens, Style(name, slip=style.slip))
    variant = variants[style.variant % len(variants)]
    calc = Calc(n_ops=_n_ops(variant, terms), slip=style.slip)
    lines, value = variant(terms, calc)
    return "\n".join(lines), fmt(value)


def solve_tokens(tokens: list, style: Style) -> tuple[str, str]:
    lines, value, calc = _reduced(list(tokens), style.slip)
    if style.name == "terse":
        return ", ".join(_op(o) for o in calc.ops) or render(tokens), fmt(value)
    return lines[0] + "".join(f"\n= {line}" for line in lines[1:]), fmt(value)
