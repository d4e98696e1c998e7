"""lighteval over a problem set on disk. lighteval cannot be installed beside reasondistill
(latex2sympy2_extended pins clash), so it runs from its own venv named by
``REASONDISTILL_LIGHTEVAL_PYTHON``; the tests that need it are skipped without it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasondistill.config import ProblemsConfig
from reasondistill.errors import ConfigError
from reasondistill.evaluate.harness import lighteval, task
from reasondistill.problems.files import read_problem_set
from tests.conftest import SHARED_DATA
from tests.helpers import harness_cli_result

GSM8K = SHARED_DATA / "gsm8k"
LIGHTEVAL_PYTHON = os.environ.get(lighteval.PYTHON_ENV)
require_lighteval = pytest.mark.skipif(not LIGHTEVAL_PYTHON, reason=f"set {lighteval.PYTHON_ENV} to a python "
                                                                    "with lighteval==0.13.0 (README)")
require_gsm8k = pytest.mark.skipif(not (GSM8K / "test.jsonl").is_file(), reason="../shared/data/gsm8k missing")


def _task(tmp_path: Path, n: int = 3):
    problems = read_problem_set(GSM8K, ProblemsConfig())[:n]
    data = task.write_dataset(problems, tmp_path / task.DATA_FILE)
    return problems, lighteval.write_task(data, tmp_path, max_new_tokens=16)


@require_gsm8k
def test_task_module_reads_the_problems_on_disk(tmp_path: Path):
    problems, folder = _task(tmp_path)
    source = (folder / lighteval.TASK_MODULE).read_text()
    compile(source, lighteval.TASK_MODULE, "exec")  # a valid module whatever the paths contain
    assert json.dumps(str((folder / "data").resolve())) in source and "generation_size=16" in source
    rows = [json.loads(line) for line in (folder / "data" / "test.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [p.id for p in problems] and rows[1]["answer"] == problems[1].answer


def test_parse_restores_problem_order_and_regrades(tmp_path: Path):
    from reasondistill.records import Problem

    problems = {f"p{i}": Problem(id=f"p{i}", source="t", prompt=f"q{i}", answer=a, meta={})
                for i, a in enumerate(["18", "3"])}
    raw = {"version": "0.13.0", "order": ["p0", "p1"],
           "results": {f"{task.TASK_NAME}:0": {"extractive_match": 0.5}, "all": {"extractive_match": 0.5}},
           "samples": [{"id": "p1", "text": "so it is 3", "metric": {"extractive_match": 0.0}},  # lighteval's order
                       {"id": "p0", "text": "Answer: 18", "metric": {"extractive_match": 1.0}}]}
    (tmp_path / lighteval.RAW_FILE).write_text(json.dumps(raw))
    score, rows = lighteval.parse(tmp_path / lighteval.RAW_FILE)
    assert score == 0.5 and [r[0] for r in rows] == ["p0", "p1"] and rows[0][3] == 1.0
    both, ours = task.regrade(problems, rows, "m")
    assert [b.our_passed for b in both] == [True, True]  # ours also takes the last number
    (tmp_path / lighteval.RAW_FILE).write_text(json.dumps({**raw, "results": {"all": {}}}))
    with pytest.raises(ConfigError, match="extractive_match"):
        lighteval.parse(tmp_path / lighteval.RAW_FILE)


@pytest.mark.skipif(importlib.util.find_spec("lighteval") is not None, reason="this python has lighteval")
def test_version_says_how_to_get_lighteval(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(lighteval.PYTHON_ENV, sys.executable)
    with pytest.raises(ConfigError, match=lighteval.PYTHON_ENV):
        lighteval.version()


@pytest.mark.slow  # importing lighteval alone takes 10 s of CPU
@require_lighteval
@require_gsm8k
def test_lighteval_loads_our_task_and_builds_our_prompts(tmp_path: Path):
    """lighteval itself imports the module and builds its docs from the local dataset."""
    problems, folder = _task(tmp_path)
    code = (
        "import json, sys\n"
        "from lighteval.tasks.registry import Registry\n"
        "from lighteval.tasks.lighteval_task import LightevalTask\n"
        "cfg = Registry._extract_configs(Registry.create_custom_tasks_module(sys.argv[1]))[sys.argv[2]]\n"
        "docs = LightevalTask(cfg).eval_docs()\n"
        "print(json.dumps([[d.query, d.choices, d.specific] for d in docs]))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([LIGHTEVAL_PYTHON, "-c", code, str(folder / lighteval.TASK_MODULE), task.TASK_NAME],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(d[2]["problem_id"] for d in docs) == sorted(p.id for p in problems)
    by_id = {d[2]["problem_id"]: d for d in docs}
    for p in problems:
        assert by_id[p.id][0] == task.question(p) and by_id[p.id][1] == [p.answer]


@pytest.mark.slow
@require_lighteval
@require_gsm8k
def test_cli_runs_lighteval_offline_on_a_tiny_model(tiny_model_dir: Path, tmp_path: Path):
    out = tmp_path / "harness"
    result = harness_cli_result("lighteval", tiny_model_dir, GSM8K, out)
    assert result["harness_version"] == "0.13.0"
    raw = json.loads((out / lighteval.RAW_FILE).read_text())
    gens = {s["id"]: s["text"] for s in raw["samples"]}
    both = [json.loads(line) for line in (out / task.HARNESS_SAMPLES_FILE).read_text().splitlines()]
    assert {b["problem_id"]: b["generation"] for b in both} == gens
