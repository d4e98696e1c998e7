"""Stage entry point: outputs, manifest, resume."""

import dataclasses
import json
from pathlib import Path

import pytest

from reasondistill import io
from reasondistill import problems as problems_stage
from reasondistill.config import ProblemsConfig
from reasondistill.errors import InputError
from reasondistill.records import Problem
from tests.helpers import recipe, stage_layout


class problems:  # noqa: N801 - the stage as ``reasondistill problems --out DIR`` runs it
    SOURCES = problems_stage.SOURCES

    @staticmethod
    def run(cfg, out):
        return problems_stage.run(recipe(problems=cfg), stage_layout(out, "problems"))

FIXTURES = Path(__file__).parents[2] / "fixtures" / "problems"


def test_table_names_importable_callables():
    import importlib

    for spec in problems.SOURCES.values():
        module, _, attr = spec.load.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_run_file_source_writes_splits_and_manifest(tmp_path):
    cfg = ProblemsConfig(source=str(FIXTURES / "mini.jsonl"), n_train=4, n_eval=3, seed=7)
    m = problems.run(cfg, tmp_path / "out")
    train = io.read_records(tmp_path / "out" / "train.jsonl", Problem)
    evals = io.read_records(tmp_path / "out" / "eval.jsonl", Problem)
    assert (len(train), len(evals)) == (4, 3)
    assert m["stage"] == "problems" and m["config"] == dataclasses.asdict(cfg)
    assert m["outputs"] == {"files": ["train.jsonl", "eval.jsonl"], "n_train": 4, "n_eval": 3, "skipped": {}}
    assert list(m["inputs"]) == [str(FIXTURES / "mini.jsonl")]  # outside the run folder: its absolute path
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["config_hash"] == m["config_hash"]


def test_run_reasoning_gym_source(tmp_path):
    m = problems.run(ProblemsConfig(n_train=8, n_eval=4), tmp_path)
    assert m["inputs"] == {} and (m["outputs"]["n_train"], m["outputs"]["n_eval"]) == (8, 4)
    assert io.read_records(tmp_path / "eval.jsonl", Problem)[0].meta["task"] == "chain_sum"


def test_resume_returns_manifest_without_rewriting(tmp_path):
    cfg = ProblemsConfig(source=str(FIXTURES / "mini.jsonl"), n_train=None, n_eval=2)
    first = problems.run(cfg, tmp_path)
    mtimes = {f: (tmp_path / f).stat().st_mtime_ns for f in ("train.jsonl", "eval.jsonl", "manifest.json")}
    again = problems.run(cfg, tmp_path)
    assert again.pop("this_run") == {"skipped": True} and first.pop("this_run") == {"skipped": False}
    assert again == first
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in mtimes} == mtimes
    # a changed config redoes the work
    changed = problems.run(dataclasses.replace(cfg, n_eval=3), tmp_path)
    assert changed["outputs"]["n_eval"] == 3
    assert (tmp_path / "manifest.json").stat().st_mtime_ns != mtimes["manifest.json"]


def test_changed_input_file_redoes_the_work(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text((FIXTURES / "mini.jsonl").read_text())
    cfg = ProblemsConfig(source=str(src), n_train=None, n_eval=2)
    problems.run(cfg, tmp_path / "out")
    src.write_text(src.read_text() + json.dumps({"question": "new one?", "answer": "#### 9"}) + "\n")
    assert problems.run(cfg, tmp_path / "out")["outputs"]["n_train"] == 7


def test_skipped_rows_reach_the_manifest(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text((FIXTURES / "mini.jsonl").read_text() + "{oops\n")
    m = problems.run(ProblemsConfig(source=str(src), n_train=None, n_eval=2, on_error="skip"), tmp_path / "o")
    assert m["outputs"]["skipped"] == {"invalid_json": 1} and m["outputs"]["n_train"] == 6


def test_failed_run_leaves_no_outputs(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text('{"question": "a"}\n')
    with pytest.raises(InputError):
        problems.run(ProblemsConfig(source=str(src)), tmp_path / "o")
    assert not (tmp_path / "o" / "manifest.json").exists() and not (tmp_path / "o" / "train.jsonl").exists()
