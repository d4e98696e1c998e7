"""Small builders the tests share: a recipe from sections, and the layout of one stage run alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasondistill.config import (CurateConfig, DecontaminateConfig, LengthConfig, Recipe, SelfConsistencyConfig,
                                  StudentAwareConfig, TeachersConfig)
from reasondistill.layout import Layout


def recipe(**sections: Any) -> Recipe:
    """A :class:`Recipe` with some sections replaced, e.g. ``recipe(verify=VerifyConfig(...))``."""
    return Recipe(**sections)


def stage_layout(out: str | Path, stage: str, **inputs: str | Path) -> Layout:
    """Like the CLI's standalone stage commands: ``out`` is the stage's folder, inputs point anywhere."""
    return Layout(Path(out)).override(dirs={stage: Path(out)}, files={k: Path(v) for k, v in inputs.items()})


def curate_all_on(student_model: str | Path, **over: Any) -> CurateConfig:
    """A curate config with every switchable policy on (the student-aware one scoring with
    ``student_model``), for checks that must reach every ``POLICIES`` row. ``length.longest``
    excludes ``length.shortest``: pass ``length=LengthConfig(longest=1)`` to reach it."""
    cfg = dict(dedup_jaccard=0.8, pass_rate_band=[0.0, 1.0], pass_rate_inclusive=True, include_hinted=False,
               length=LengthConfig(shortest=1, budget=1000, budget_by_difficulty=[[0.5, 500]]),
               student_aware=StudentAwareConfig(top=1, model=str(student_model), dtype="float32", device="cpu"),
               self_consistency=SelfConsistencyConfig(min_share=0.5), decontaminate=DecontaminateConfig(ngram=3),
               teachers=TeachersConfig(best=True, quota={"*": 1}, share={"*": 1.0}), random=1)
    return CurateConfig(**{**cfg, **over})


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
