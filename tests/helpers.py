"""Small builders the tests share: a recipe from sections, and the layout of one stage run alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasondistill.config import Recipe
from reasondistill.layout import Layout


def recipe(**sections: Any) -> Recipe:
    """A :class:`Recipe` with some sections replaced, e.g. ``recipe(verify=VerifyConfig(...))``."""
    return Recipe(**sections)


def stage_layout(out: str | Path, stage: str, **inputs: str | Path) -> Layout:
    """Like the CLI's standalone stage commands: ``out`` is the stage's folder, inputs point anywhere."""
    return Layout(Path(out)).override(dirs={stage: Path(out)}, files={k: Path(v) for k, v in inputs.items()})
