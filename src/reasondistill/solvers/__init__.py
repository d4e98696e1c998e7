"""Step-by-step solvers for procedural tasks: the program teacher's rationale writers.

Each solver is ``solve(problem, style=Style()) -> (reasoning, answer)``: the reasoning lines
(without the final ``Answer:`` line) written in a :class:`~.styles.Style`, and the answer they
reach. A solver module lists the styles it writes in ``STYLES`` (a solver without one writes
only ``steps`` and may take the problem alone). One file per task family; add a row here to
register one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..records import Problem

SOLVERS: dict[str, str] = {
    "chain_sum": "reasondistill.solvers.arithmetic:solve",
    "basic_arithmetic": "reasondistill.solvers.arithmetic:solve",
    "leg_counting": "reasondistill.solvers.leg_counting:solve",
}


def get_solver(task: str) -> Callable[[Problem], tuple[str, str]]:
    from ..registry import load

    if task not in SOLVERS:
        raise ConfigError(f"the program teacher has no solver for task '{task}' "
                          f"(available: {', '.join(sorted(SOLVERS))}); use an LLM teacher instead")
    return load(SOLVERS[task])


def solver_styles(task: str) -> tuple[str, ...]:
    """The styles the ``task`` solver writes (``STYLES`` of its module; ``("steps",)`` if none)."""
    import importlib

    return tuple(getattr(importlib.import_module(SOLVERS[task].split(":")[0]), "STYLES", ("steps",)))
