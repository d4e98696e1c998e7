"""How a program teacher writes a rationale: its style, which of several rationales, and whether
it slips.

Comparisons of curation and objectives need traces that differ in controlled ways, which one
deterministic rationale per problem cannot give:

- ``steps`` (the default) rewrites the whole expression one operation at a time;
- ``terse`` writes each operation once, on one line (the short rationale);
- ``verbose`` states the plan, names every step and checks the result (3-5x the tokens of
  ``terse``: the long rationale of the learnability-gap question);
- ``varied`` writes one of several distinct correct rationales (another order, another
  decomposition), chosen by the sample index, so selection policies have something to choose among.
- ``digits`` is ``steps`` with every addition or subtraction of a multi-digit number split into
  its tens-and-above part and its last digit, one place value per written operation (solvers that
  cannot split an operation write ``steps``).
- ``columns`` is ``steps`` with each multi-digit addition or subtraction worked column by column
  on its own line, carries and borrows written out, so every written step is a one-digit fact.

A *slip* makes one intermediate result plausibly wrong (off by 1, 2 or 10) and carries the
wrong value on to the end, as a careless solver would: the negatives of REDI, DPO and SimPO.
Solvers compute through :class:`Calc`, which applies the slip and records every operation, so
each style is rendered from the same operations and a slip stays consistent in every style.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction

STYLES = ("steps", "terse", "verbose", "varied", "digits", "columns")
SLIP_SIZES = (1, -1, 10, -10, 2, -2)


@dataclass(frozen=True, slots=True)
class Style:
    """One rationale to write: ``name`` (one of :data:`STYLES`), ``variant`` (which rationale of a
    ``varied`` solver; any int, taken modulo the solver's count) and ``slip`` (``None``: correct;
    else a seed that picks which operation goes wrong and by how much)."""

    name: str = "steps"
    variant: int = 0
    slip: int | None = None


def slip_seed(problem_id: str, sample_idx: int, seed: int) -> int:
    """A stable 32-bit number per (problem, sample, seed): decides whether a sample slips, and where."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{problem_id}:{sample_idx}".encode()).digest()[:4], "big")


@dataclass(frozen=True, slots=True)
class Op:
    """One written operation ``a op b = result`` (``result`` is what the rationale says, right or not)."""

    a: Fraction
    op: str
    b: Fraction
    result: Fraction

    @property
    def slipped(self) -> bool:
        return self.result != _apply(self.a, self.op, self.b)


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction:
    if op == "/" and b == 0:
        raise ZeroDivisionError("division by zero")
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]


@dataclass(slots=True)
class Calc:
    """Does a solver's arithmetic and records it; with a ``slip`` seed, the operation it picks
    returns a wrong value (the rest of the solution then builds on it).

    ``n_ops`` must be the number of operations the solution will make, so the slip lands on one
    of them (chosen uniformly by the seed)."""

    n_ops: int
    slip: int | None = None
    ops: list[Op] = field(default_factory=list)

    def __call__(self, a: Fraction, op: str, b: Fraction) -> Fraction:
        value = _apply(a, op, b)
        if self.slip is not None and self.n_ops and len(self.ops) == self.slip % self.n_ops:
            value += SLIP_SIZES[(self.slip // self.n_ops) % len(SLIP_SIZES)]
        self.ops.append(Op(a, op, b, value))
        return value

    @property
    def slipped(self) -> bool:
        return any(op.slipped for op in self.ops)
