"""``train.warm_start``: an on-policy objective trains SFT on the curated traces first and starts
from that checkpoint (``reasondistill train`` and the ``run`` pipeline's train stage); ``none`` and
an explicit student are honoured; a warm start without traces is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasondistill import train
from reasondistill.config import Recipe, TrainConfig, build
from reasondistill.errors import ConfigError
from reasondistill.layout import Layout
from reasondistill.train import warm_start

from .conftest import error_line, problem_rows, snapshot, write_jsonl
from .test_train_resume import _one_thread  # noqa: F401  (autouse: tiny models train faster on one thread)

TINY = ["train.max_steps=1", "train.batch_size=2", "train.dtype=float32", "train.device=cpu", "train.max_length=64",
        "train.warmup_ratio=0", "train.objective.max_new_tokens=4"]


def curated(path: Path) -> Path:
    return write_jsonl(path, [{"prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
                               "completion": [{"role": "assistant", "content": f"Answer: {i + 2}"}],
                               "meta": {"problem_id": f"p{i}"}} for i in range(4)])


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("method, expected", [("gkd", "sft"), ("grpo", "sft"), ("kdrl", "sft"),
                                              ("negative-advantage", "sft"), ("kd", "none"), ("dpo", "none"),
                                              ("sft", "none")])
def test_auto_warm_starts_exactly_the_on_policy_objectives(method, expected):
    objective = {"teacher": "t"} if method in ("gkd", "kdrl") else {}  # options are checked when built
    def config(**kw):
        return TrainConfig(method=method, objective=objective, **kw)
    assert warm_start.resolve(config()) == expected
    assert warm_start.resolve(config(warm_start="none")) == "none"
    assert warm_start.resolve(config(warm_start="sft")) == ("none" if method == "sft" else "sft")


def test_train_on_policy_trains_sft_first_on_its_traces_then_starts_from_it(cli, tiny_model_dir, tmp_path):
    data, out = curated(tmp_path / "train.jsonl"), tmp_path / "out"
    argv = ["train", "negative-advantage", "--data", data, "--out", out, f"train.student={tiny_model_dir}", *TINY]
    rc, stdout, err = cli(*argv)
    assert rc == 0, err
    sft = manifest(out / "warm_start")
    assert sft["outputs"]["method"] == "sft" and sft["outputs"]["steps"] == 1
    assert sft["config"]["student"] == str(tiny_model_dir)  # the SFT pass starts from train.student
    on_policy = manifest(out)
    assert on_policy["outputs"]["method"] == "negative-advantage"
    assert on_policy["config"]["train"]["student"] == str(out / "warm_start" / "model")
    assert json.loads(stdout.splitlines()[-1])["model"] == str(out / "model")
    before = snapshot(out)
    rc, _, err = cli(*argv)  # finished: both runs are reused, nothing is rewritten
    assert rc == 0, err
    assert snapshot(out) == before


def test_warm_start_none_trains_from_the_student_as_given(cli, tiny_model_dir, tmp_path):
    data, out = curated(tmp_path / "train.jsonl"), tmp_path / "out"
    rc, _, err = cli("train", "negative-advantage", "--data", data, "--out", out, f"train.student={tiny_model_dir}",
                     "train.warm_start=none", *TINY)
    assert rc == 0, err
    assert not (out / "warm_start").exists()
    assert manifest(out)["config"]["train"]["student"] == str(tiny_model_dir)


def test_a_dry_run_says_which_traces_the_warm_start_trains_on(cli, tiny_model_dir, tmp_path):
    data = curated(tmp_path / "train.jsonl")
    rc, out, err = cli("train", "negative-advantage", "--data", data, "--out", tmp_path / "out", "--dry-run",
                       f"train.student={tiny_model_dir}")
    assert rc == 0, err
    assert f"warm start:      SFT on {data} first (train.warm_start)" in out
    rc, out, err = cli("train", "negative-advantage", "--data", data, "--out", tmp_path / "out", "--dry-run",
                       f"train.student={tiny_model_dir}", "train.warm_start=none")
    assert rc == 0 and "warm start" not in out and not (tmp_path / "out").exists()


def test_an_explicit_warm_start_without_traces_is_refused_before_any_work(cli, tiny_model_dir, tmp_path):
    problems, out = write_jsonl(tmp_path / "problems.jsonl", problem_rows(4)), tmp_path / "out"
    rc, _, err = cli("train", "grpo", "--data", problems, "--out", out, f"train.student={tiny_model_dir}",
                     "train.warm_start=sft")
    assert rc == 2
    line = error_line(err)
    assert "train.warm_start: sft" in line and "--sft-data" in line
    assert not (out / "model").exists() and not (out / "warm_start").exists()
    with pytest.raises(ConfigError, match="train.warm_start = 'later' is not one of: auto, sft, none"):
        build(TrainConfig, {"warm_start": "later"}, "train")


def test_the_run_pipelines_train_stage_warm_starts_on_the_runs_curated_traces(tiny_model_dir, tmp_path):
    layout = Layout(tmp_path / "run")
    curated(layout.path("curated"))
    recipe = build(Recipe, {"train": {"student": str(tiny_model_dir), "method": "negative-advantage", "max_steps": 1,
                                      "batch_size": 2, "dtype": "float32", "device": "cpu", "max_length": 64,
                                      "objective": {"max_new_tokens": 4}}})
    m = train.run(recipe, layout)
    assert m["outputs"]["method"] == "negative-advantage"
    assert m["config"]["train"]["student"] == str(layout.path("warm_start") / "model")
    assert manifest(layout.path("warm_start"))["outputs"]["method"] == "sft"
    assert (layout.checkpoint / "config.json").is_file()


def test_a_retrained_warm_start_retrains_the_run_that_starts_from_it(cli, tiny_model_dir, tmp_path):
    """grpo's own input is the problems: only the warm start's weights tell it that the SFT pass
    under it retrained on other traces, so it is not reused stale."""
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(4))
    out = tmp_path / "out"
    tiny = [a for a in TINY if not a.startswith("train.objective.")]
    argv = ["train", "grpo", "--data", problems, "--out", out, f"train.student={tiny_model_dir}", *tiny,
            "train.objective.num_generations=2", "train.objective.max_completion_length=4"]
    rc, _, err = cli(*argv, "--sft-data", curated(tmp_path / "a.jsonl"))
    assert rc == 0, err
    first = manifest(out)
    rc, _, err = cli(*argv, "--sft-data", curated(tmp_path / "a.jsonl"))  # the same traces: both reused
    assert rc == 0, err
    assert manifest(out) == first
    other = write_jsonl(tmp_path / "b.jsonl", [{"prompt": [{"role": "user", "content": f"What is {i} + 3?"}],
                                               "completion": [{"role": "assistant", "content": f"Answer: {i + 3}"}],
                                               "meta": {"problem_id": f"p{i}"}} for i in range(4)])
    rc, _, err = cli(*argv, "--sft-data", other)
    assert rc == 0, err
    assert manifest(out / "warm_start")["inputs"] != first["inputs"]
    assert manifest(out)["inputs"] != first["inputs"]  # retrained from the new warm start
