"""A toy backend, curation policy, loss, objective, generation mode, task and problem source, each
one file plus one table row (patched in here), pass the same contract checks as the built-in
entries and run through a tiny pipeline with no other edit."""

from __future__ import annotations

import json

import pytest

from reasondistill import backends, curate, generate, pipeline, problems, tasks, train
from reasondistill.config import Recipe, TrainConfig, build
from reasondistill.errors import ConfigError
from reasondistill.io import iter_jsonl
from reasondistill.problems import Source
from reasondistill.tasks import Task
from reasondistill.train import Objective
from reasondistill.train import losses

from . import checks

TOYS = "tests.contract.toys"


@pytest.fixture
def toy_rows(monkeypatch):
    monkeypatch.setitem(backends.BACKENDS, "echo", f"{TOYS}.echo_backend:EchoBackend")
    monkeypatch.setitem(curate.POLICIES, "marked", curate.Row(f"{TOYS}.no_marker_policy:DropMarked"))
    monkeypatch.setitem(losses.LOSSES, "squared", losses.Row(f"{TOYS}.squared_loss:squared"))
    monkeypatch.setitem(losses.LOSSES, "scaled", losses.Row(f"{TOYS}.scaled_loss:scaled",
                                                            f"{TOYS}.scaled_loss:ScaledOptions"))
    monkeypatch.setitem(train.OBJECTIVES, "shortest", Objective(f"{TOYS}.shortest_sft:ShortestConfig",
                                                                f"{TOYS}.shortest_sft:run", "curated"))


@pytest.fixture
def toy_tables(monkeypatch):
    """The rows of the task, problem source and generation mode toys."""
    monkeypatch.setitem(tasks.TASKS, "parity", Task(source=f"{TOYS}.parity_task:load",
                                                    verifier=f"{TOYS}.parity_task:ParityVerifier",
                                                    solver=f"{TOYS}.parity_task:solve",
                                                    prompt=f"{TOYS}.parity_task:PROMPT"))
    monkeypatch.setitem(problems.SOURCES, "counting", Source(f"{TOYS}.counting_source:load"))
    monkeypatch.setitem(generate.MODES, "recheck", f"{TOYS}.recheck_mode:Recheck")


def test_toys_meet_the_contracts(toy_rows, toy_tables, tmp_path):
    checks.check_backend("echo")
    checks.check_student("echo", None, None, tmp_path)
    checks.check_policy_row(curate.POLICIES["marked"])
    checks.check_policy(curate.POLICIES["marked"])
    checks.check_loss(losses.LOSSES["squared"])
    checks.check_loss_options("squared")
    checks.check_loss(losses.LOSSES["scaled"])
    checks.check_loss_options("scaled")
    checks.check_objective("shortest")
    checks.check_task("parity")
    checks.check_source("counting")
    checks.check_mode("recheck")


def tiny(tiny_model_dir, tmp_path, **sections):
    base = {
        "name": "toys",
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 8, "n_eval": 4},
        "generate": {"samples": 1, "rationalize": False, "cache_dir": str(tmp_path / "cache")},
        "train": {"student": str(tiny_model_dir), "max_steps": 1, "batch_size": 4, "max_length": 128,
                  "dtype": "float32", "device": "cpu"},
        "eval": {"models": ["student_after"], "max_new_tokens": 4, "batch_size": 8, "dtype": "float32",
                 "device": "cpu"},
    }
    return build(Recipe, {**base, **sections})


def test_toy_backend_policy_and_objective_in_a_pipeline(toy_rows, tiny_model_dir, tmp_path):
    recipe = tiny(tiny_model_dir, tmp_path, teacher={"backend": "echo", "options": {"reasoning": "FORBIDDEN, then"}},
                  train={"student": str(tiny_model_dir), "method": "shortest", "objective": {"share": 0.5},
                         "max_steps": 1, "batch_size": 4, "max_length": 128, "dtype": "float32", "device": "cpu"})
    with pytest.raises(Exception, match="no trace|nothing|empty"):  # the toy policy dropped every echo trace
        pipeline.run(recipe, tmp_path / "marked")
    rejected = [o["reason"] for _, o in iter_jsonl(tmp_path / "marked" / "curate" / "rejected.jsonl")]
    assert rejected == ["marked"] * 8

    recipe.teacher.options = {}
    report = pipeline.run(recipe, tmp_path / "run")
    traces = [o for _, o in iter_jsonl(tmp_path / "run" / "generate" / "traces.jsonl")]
    assert len(traces) == 8 and all(t["teacher"] == "echo" and "I add the numbers." in t["raw"] for t in traces)
    manifest = json.loads((tmp_path / "run" / "curate" / "manifest.json").read_text())
    assert "marked" in manifest["outputs"]["policies"]
    trained = json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())
    assert trained["outputs"]["n_examples"] == 4  # the toy objective's option: half of the 8 examples
    assert report["student_after"]["n"] == 4


def test_toy_loss_with_its_option_in_on_policy_distillation_in_a_pipeline(toy_rows, tiny_model_dir, tmp_path):
    """The loss row is used by GKD (and offline KD) by name, and its own option comes from the recipe
    (``train.objective.loss_options``) through the row's options class: a pipeline trains with
    ``scale: 3``, and its first loss is 3 times the option-less toy's on the same data."""
    teacher = sharper(tiny_model_dir, tmp_path / "teacher")

    def section(loss, **options):
        return {"student": str(tiny_model_dir), "method": "gkd",
                "objective": {"teacher": str(teacher), "loss": loss, "lmbda": 0.5, "max_new_tokens": 4,
                              **options},
                "max_steps": 1, "logging_steps": 1, "batch_size": 4, "max_length": 128, "dtype": "float32",
                "device": "cpu"}

    with pytest.raises(ConfigError, match=r"gkd.scale must be a number > 0, got 0"):
        tiny(tiny_model_dir, tmp_path, train=section("scaled", loss_options={"scale": 0}))
    recipe = tiny(tiny_model_dir, tmp_path, teacher={"backend": "echo"},
                  train=section("scaled", loss_options={"scale": 3}))
    report = pipeline.run(recipe, tmp_path / "run")
    trained = json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())
    gkd = trained["config"]["gkd"]
    assert (gkd["loss"], gkd["loss_options"], trained["outputs"]["steps"]) == ("scaled", {"scale": 3}, 1)
    assert report["student_after"]["n"] == 4

    plain = build(TrainConfig, section("squared"), "train")
    train.run_objective(plain, tmp_path / "run" / "curate" / "train.jsonl", tmp_path / "squared")
    first = [json.loads(p.read_text().splitlines()[0])["loss"]
             for p in (tmp_path / "run" / "train" / "loss.jsonl", tmp_path / "squared" / "loss.jsonl")]
    assert first[1] > 1e-4 and first[0] == pytest.approx(3 * first[1], rel=1e-4)


def sharper(model_dir, out):
    """A teacher with the student's vocabulary whose token distributions differ from the student's."""
    from reasondistill import models

    model = models.load_model(str(model_dir), dtype="float32", device="cpu")
    model.lm_head.weight.data.mul_(8.0)  # tied to the embeddings: every logit sharpened
    model.save_pretrained(out)
    models.load_tokenizer(str(model_dir)).save_pretrained(out)
    return out


def test_toy_source_and_mode_in_a_pipeline(toy_tables, tiny_model_dir, tmp_path):
    """``problems.source: counting`` reads the toy source; ``generate.modes: [recheck]`` adds the toy
    mode's pass after the first one, at the next sample index, and its manifest block."""
    recipe = tiny(tiny_model_dir, tmp_path, problems={"source": "counting", "n_train": 8, "n_eval": 4},
                  teacher={"backend": "dummy", "options": {"accuracy": 1.0}},
                  generate={"samples": 1, "rationalize": False, "modes": ["recheck"],
                            "cache_dir": str(tmp_path / "cache")})
    report = pipeline.run(recipe, tmp_path / "run")
    train = [o for _, o in iter_jsonl(tmp_path / "run" / "problems" / "train.jsonl")]
    assert len(train) == 8 and all(p["prompt"].startswith("How many letters") for p in train)
    traces = [o for _, o in iter_jsonl(tmp_path / "run" / "generate" / "traces.jsonl")]
    rechecked = [t for t in traces if t["meta"].get("mode") == "recheck"]
    assert len(traces) == 16 and len(rechecked) == 8
    assert {t["sample_idx"] for t in rechecked} == {1} and not any(t["hinted"] for t in rechecked)
    manifest = json.loads((tmp_path / "run" / "generate" / "manifest.json").read_text())
    assert manifest["outputs"]["recheck"] == {"traces": 8} and manifest["outputs"]["n_traces"] == 16
    verdicts = [o for _, o in iter_jsonl(tmp_path / "run" / "verify" / "verdicts.jsonl")]
    assert len(verdicts) == 16 and all(v["passed"] for v in verdicts)  # the dummy teacher at accuracy 1
    assert report["student_after"]["n"] == 4


def test_toy_task_with_a_program_teacher_in_a_pipeline(toy_tables, tiny_model_dir, tmp_path):
    """``problems.task: parity``: the task row's loader makes the problems, its solver is the program
    teacher, ``verify.verifier: auto`` picks its verifier, and the student is trained and evaluated
    on its prompt format."""
    recipe = tiny(tiny_model_dir, tmp_path, problems={"task": "parity", "n_train": 8, "n_eval": 4},
                  teacher={"backend": "program"})
    report = pipeline.run(recipe, tmp_path / "run")
    traces = [o for _, o in iter_jsonl(tmp_path / "run" / "generate" / "traces.jsonl")]
    assert len(traces) == 8 and all(t["teacher"] == "program" and " = 2 * " in t["raw"] for t in traces)
    verdicts = [o for _, o in iter_jsonl(tmp_path / "run" / "verify" / "verdicts.jsonl")]
    assert {v["verifier"] for v in verdicts} == {"parity"} and all(v["passed"] for v in verdicts)
    curated = [o for _, o in iter_jsonl(tmp_path / "run" / "curate" / "train.jsonl")]
    assert len(curated) == 8 and all(e["prompt"][-1]["content"].startswith("Parity check. Is ") for e in curated)
    assert report["student_after"]["n"] == 4
