"""Small builders the tests share: a recipe from sections, and the layout of one stage run alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from reasondistill.config import CurateConfig, Recipe, build
from reasondistill.errors import ConfigError
from reasondistill.layout import Layout


def recipe(**sections: Any) -> Recipe:
    """A :class:`Recipe` with some sections replaced, e.g. ``recipe(verify=VerifyConfig(...))``."""
    return Recipe(**sections)


def stage_layout(out: str | Path, stage: str, **inputs: str | Path) -> Layout:
    """Like the CLI's standalone stage commands: ``out`` is the stage's folder, inputs point anywhere."""
    return Layout(Path(out)).override(dirs={stage: Path(out)}, files={k: Path(v) for k, v in inputs.items()})


def curate_all_on(student_model: str | Path, *, first: str | None = None, **over: Any) -> CurateConfig:
    """A curate config with every ``POLICIES`` row's ``on`` settings merged in table order, for checks
    that must reach every row (the student-aware one scoring with ``student_model``). A row whose
    settings contradict the ones before it (``longest`` after ``shortest``) is left out; ``first``
    names a row merged before the others, to reach it. ``over``: fields set last."""
    from reasondistill.curate import POLICIES

    rows = sorted(POLICIES.items(), key=lambda item: item[0] != first)
    merged: dict[str, Any] = {"student_aware": {"model": str(student_model), "dtype": "float32", "device": "cpu"}}
    for _, row in rows:
        candidate = _merged(merged, row.on)
        try:
            build(CurateConfig, candidate, "curate")
        except ConfigError:
            continue
        merged = candidate
    return dataclasses.replace(build(CurateConfig, merged, "curate"), **over)


def _merged(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``more`` merged into it, section by section."""
    out = dict(base)
    for key, value in more.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def harness_cli_result(harness: str, model_dir: Path, problems: Path, out: Path) -> dict[str, Any]:
    """``reasondistill evaluate --harness NAME`` on 3 problems with a tiny model, offline; its result.json
    (after checking the command succeeded and the scores are shares)."""
    import json

    from reasondistill.cli import main
    from reasondistill.evaluate.harness import task

    rc = main(["evaluate", "--harness", harness, "--model", str(model_dir), "--problems", str(problems),
               "--out", str(out), "eval.n=3", "eval.max_new_tokens=8", "eval.dtype=float32", "eval.device=cpu"])
    assert rc == 0
    result = json.loads((out / task.RESULT_FILE).read_text())
    assert result["harness"] == harness and result["n"] == 3
    assert 0.0 <= result["harness_score"] <= 1.0 and 0.0 <= result["our_score"] <= 1.0
    return result
