"""``run:NAME`` references in every model field, replaced without touching the recipe as given."""

import json

from reasondistill import pipeline
from reasondistill.config import Recipe, build, run_reference


def test_every_model_field_may_hold_a_reference(tmp_path, monkeypatch):
    recipe = build(Recipe, {"teacher": {"backend": "transformers", "model": "run:default"},
                            "train": {"student": "run:default", "method": "gkd",
                                      "objective": {"teacher": "run:llm-teacher", "lmbda": 0.5}},
                            "curate": {"student_aware": {"top": 1, "model": "run:default"}}})
    assert pipeline.references(recipe) == {"teacher.model": "run:default", "train.student": "run:default",
                                           "train.objective.teacher": "run:llm-teacher",
                                           "curate.student_aware.model": "run:default"}
    calls = []

    def fake(spec, where="model", root=None):
        calls.append(spec)
        return {"ref": spec, "path": f"/ckpt/{run_reference(spec)}", "accuracy": 0.48}
    monkeypatch.setattr(pipeline, "resolve_reference", fake)
    out = pipeline.resolve_references(recipe, tmp_path)
    assert calls == ["run:default", "run:llm-teacher"]  # each named run resolved once
    assert (out.teacher.model, out.train.student, out.curate.student_aware.model) == ("/ckpt/default",) * 3
    assert out.train.objective == {"teacher": "/ckpt/llm-teacher", "lmbda": 0.5}
    assert recipe.teacher.model == recipe.train.student == "run:default"  # the recipe as given is untouched
    assert recipe.train.objective["teacher"] == "run:llm-teacher"
    on_disk = json.loads((tmp_path / "references.json").read_text())
    assert on_disk["train.objective.teacher"]["path"] == "/ckpt/llm-teacher"
    assert pipeline.resolve_references(Recipe()) == Recipe()  # nothing to resolve: the same recipe


def test_a_listed_teacher_may_hold_a_reference(tmp_path, monkeypatch):
    recipe = build(Recipe, {"teacher": [{"name": "strong", "backend": "transformers", "model": "run:default"},
                                        {"name": "prog", "backend": "program"}]})
    assert pipeline.references(recipe) == {"teacher.strong.model": "run:default"}
    monkeypatch.setattr(pipeline, "resolve_reference",
                        lambda spec, where="model", root=None: {"ref": spec, "path": "/ckpt/default"})
    out = pipeline.resolve_references(recipe, tmp_path)
    assert [(t.name, t.model) for t in out.teacher] == [("strong", "/ckpt/default"),
                                                         ("prog", recipe.teacher[1].model)]
    assert recipe.teacher[0].model == "run:default"


def test_a_scoring_teachers_backend_config_may_hold_a_reference(tmp_path, monkeypatch):
    """kd's teacher is a backend config, not a model name: its ``model`` resolves and its other keys stay."""
    teacher = {"backend": "transformers", "model": "run:on-policy-teacher", "dtype": "float32"}
    recipe = build(Recipe, {"train": {"method": "kd", "objective": {"loss": "jsd", "teacher": teacher}}})
    assert pipeline.references(recipe) == {"train.objective.teacher.model": "run:on-policy-teacher"}
    monkeypatch.setattr(pipeline, "resolve_reference",
                        lambda spec, where="model", root=None: {"ref": spec, "path": "/ckpt/opt"})
    out = pipeline.resolve_references(recipe, tmp_path)
    assert out.train.objective == {"loss": "jsd", "teacher": {**teacher, "model": "/ckpt/opt"}}
    assert recipe.train.objective["teacher"]["model"] == "run:on-policy-teacher"  # the recipe as given is untouched


def finished_run(root, name="default"):
    """A run folder that counts as finished: a checkpoint's config.json and a report."""
    model = root / name / "train" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (root / name / "report.json").write_text("{}")
    return model


def test_single_stages_use_finished_runs_and_never_start_one(tmp_path, monkeypatch):
    """``resolve_finished`` (the stage commands' resolver) replaces a finished run's reference and
    leaves a missing one in place, training nothing."""
    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path))
    model = finished_run(tmp_path)
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    recipe = build(Recipe, {"teacher": [{"name": "strong", "backend": "transformers", "model": "run:default"},
                                        {"name": "other", "backend": "transformers", "model": "run:llm-teacher"}]})
    out = pipeline.resolve_finished(recipe)
    assert [t.model for t in out.teacher] == [str(model.resolve()), "run:llm-teacher"]
    assert recipe.teacher[0].model == "run:default"  # the recipe as given is untouched


def test_an_unmade_run_reference_says_how_to_make_it():
    import pytest

    from reasondistill import models
    from reasondistill.errors import ConfigError
    with pytest.raises(ConfigError, match=r"<runs root>/llm-teacher/train/model exists \(--runs-root"):
        models.resolve("run:llm-teacher")


def test_a_stage_command_finds_the_run_under_its_runs_root(tmp_path, monkeypatch):
    """``generate --recipe compare`` (teacher ``run:default``): resolved under --runs-root, which wins
    over $REASONDISTILL_RUNS; without a finished run there the reference stays for the error above."""
    from reasondistill import cli
    from reasondistill.cli import stages

    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path / "elsewhere"))  # restored after the test
    model = finished_run(tmp_path / "root")
    argv = ["generate", "--problems", "p.jsonl", "--out", str(tmp_path / "g"), "--recipe", "compare"]
    assert stages._recipe(cli.parse_args(argv)).teacher.model == "run:default"
    recipe = stages._recipe(cli.parse_args([*argv, "--runs-root", str(tmp_path / "root")]))
    assert recipe.teacher.model == str(model.resolve())
