"""Stage 1, problems: load or generate questions with gold answers, split into train and eval.

``SOURCES`` maps ``problems.source`` to a :class:`Source` row: ``load`` is a ``module:function``
taking a ``ProblemsConfig`` and returning ``base.Loaded``. A source that is not a row name is a
path, read by the row marked ``paths``; the row marked ``tasks`` generates ``problems.task`` (a task
with its own row in ``reasondistill.tasks.TASKS`` brings its own loader). Import strings (and a
light ``base``) keep ``import reasondistill.problems`` free of reasoning-gym, pyarrow and datasets
until a source is used. Adding a source: one file with ``load(cfg)``, plus one row here.
"""

from .base import Loaded, Source, run

SOURCES = {
    "reasoning_gym": Source("reasondistill.problems.reasoning_gym:load", tasks=True),
    "file": Source("reasondistill.problems.files:load", paths=True),
}

__all__ = ["SOURCES", "Loaded", "Source", "run"]
