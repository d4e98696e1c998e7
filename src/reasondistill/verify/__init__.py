"""Stage 3a, verify: one verdict per teacher trace (``run.py``).

The checkers themselves (answer extraction, math-verify, reasoning-gym scorers) live in the
shared ``reasondistill.grading`` package, because generation (STaR), evaluation and RL
rewards score answers too.
"""

from .run import run

__all__ = ["run"]
