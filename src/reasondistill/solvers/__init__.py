"""Step-by-step solvers for procedural tasks: the program teacher's rationale writers.

Each solver is ``solve(problem, style=Style()) -> (reasoning, answer)``: the reasoning lines
(without the final ``Answer:`` line) written in a :class:`~.styles.Style`, and the answer they
reach. A solver module lists the styles it writes in ``STYLES`` (a solver without one writes
only ``steps`` and may take the problem alone). A task names its solver in its row of
``reasondistill.tasks.TASKS``; one file per task family lives here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import ConfigError
from ..records import Problem
from ..tasks import TASKS


def solvers() -> dict[str, str]:
    """``{task: "module:function"}`` for the tasks whose row names a solver."""
    return {name: row.solver for name, row in TASKS.items() if row.solver}


def has_solver(task: str) -> bool:
    return task in TASKS and TASKS[task].solver is not None


def get_solver(task: str) -> Callable[[Problem], tuple[str, str]]:
    from ..registry import load

    if not has_solver(task):
        raise ConfigError(f"the program teacher has no solver for task '{task}' "
                          f"(available: {', '.join(sorted(solvers()))}); use an LLM teacher instead")
    return load(TASKS[task].solver)


def solver_styles(task: str) -> tuple[str, ...]:
    """The styles the ``task`` solver writes (``STYLES`` of its module; ``("steps",)`` if none)."""
    return tuple(getattr(importlib.import_module(solvers()[task].split(":")[0]), "STYLES", ("steps",)))
