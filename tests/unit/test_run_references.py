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
