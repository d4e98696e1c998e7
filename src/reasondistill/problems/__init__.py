"""Stage 1, problems: load or generate questions with gold answers, split into train and eval.

``SOURCES`` maps a source kind to ``module:function``; the function takes a ``ProblemsConfig``
and returns ``base.Loaded``. Import strings (and a light ``base``) keep
``import reasondistill.problems`` free of reasoning-gym, pyarrow and datasets until a source
is used.
"""

from .base import Loaded, run

SOURCES = {
    "reasoning_gym": "reasondistill.problems.reasoning_gym:load",
    "file": "reasondistill.problems.files:load",
}

__all__ = ["SOURCES", "Loaded", "run"]
