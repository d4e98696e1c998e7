"""Data-driven verifier cases from tests/cases/verify/*.json (lighteval's test_cases pattern)."""

import json
from functools import lru_cache
from pathlib import Path

import pytest

from reasondistill.config import VerifyConfig
from reasondistill.records import Problem
from reasondistill.grading import get_verifier, score_text

CASES_DIR = Path(__file__).resolve().parents[2] / "cases" / "verify"


def load_cases():
    out = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            out.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return out


@lru_cache(maxsize=None)
def rg_entry(task, seed, size, index):
    import reasoning_gym

    return reasoning_gym.create_dataset(task, seed=seed, size=size)[index]


def problem_for(case):
    if "task" in case:
        entry = rg_entry(case["task"], case["seed"], case["size"], case["index"])
        assert entry["answer"] == case["answer"], "reasoning-gym generated a different item; update the case"
        return Problem(id="p", source=f"reasoning_gym:{case['task']}", prompt=entry["question"],
                       answer=entry["answer"], meta={"task": case["task"], "rg_entry": entry})
    return Problem(id="p", source="golden", prompt="question", answer=case["answer"])


def test_cases_exist():
    assert len(load_cases()) >= 30


@pytest.mark.parametrize("case", load_cases())
def test_golden(case):
    problem = problem_for(case)
    score = score_text(problem, case["output"], VerifyConfig(verifier=case["verifier"], timeout_s=30))
    assert score.passed is case["passed"], score
    if "score" in case:
        assert score.score == pytest.approx(case["score"]), score
    for key in ("extracted", "formatted", "reason"):
        if key in case:
            assert getattr(score, key) == case[key], score
    if case["verifier"] != "auto":
        assert get_verifier(case["verifier"], problem).name == case["verifier"]
