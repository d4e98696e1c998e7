"""``eval.student_backend``: every role a student plays (evaluated, probed, the self-taught teacher of
the next loop round) runs on the one backend config :func:`roles.student_config` builds."""

from __future__ import annotations

from pathlib import Path

from reasondistill.config import EvalConfig, Recipe, build
from reasondistill.evaluate import probe, settings
from reasondistill.evaluate.roles import student_config


def recipe(**eval_section) -> Recipe:
    return build(Recipe, {"train": {"student": "stu", "trust_remote_code": True},
                          "eval": {"dtype": "float32", "device": "cpu", "batch_size": 3, **eval_section},
                          "generate": {"probe": {"dtype": "bfloat16", "batch_size": 5}}})


def test_the_default_backend_keeps_finished_evaluations_recognised():
    """Unset, the student's backend is no part of an evaluation's key (as before it existed)."""
    assert "student_backend" not in settings.config_dict(EvalConfig())
    assert "student_options" not in settings.config_dict(EvalConfig())
    changed = settings.config_dict(EvalConfig(student_backend="llamacpp", student_options={"n_ctx": 512}))
    assert changed["student_backend"] == "llamacpp" and changed["student_options"] == {"n_ctx": 512}


def test_student_config_is_the_teacher_section_shape_on_the_student_model():
    cfg = student_config(recipe(student_backend="vllm", student_options={"seed": 3}), "ckpt")
    assert (cfg.backend, cfg.model, cfg.options) == ("vllm", "ckpt", {"seed": 3})
    assert (cfg.dtype, cfg.device, cfg.batch_size, cfg.trust_remote_code) == ("float32", "cpu", 3, True)
    default = student_config(recipe(), "ckpt")
    assert default.backend == "transformers" and default.options == {}


def test_the_probe_asks_the_student_on_its_backend():
    cfg = probe.backend_config(recipe(student_backend="llamacpp", student_options={"n_ctx": 256}))
    assert (cfg.backend, cfg.model, cfg.options) == ("llamacpp", "stu", {"n_ctx": 256})
    assert (cfg.dtype, cfg.batch_size) == ("bfloat16", 5)  # the probe's own settings


def test_a_self_taught_teacher_runs_on_the_students_backend(tmp_path):
    from reasondistill.loop import round_recipe

    r = recipe(student_backend="vllm")
    r.loop.self_teach = True
    teacher = round_recipe(r, 2, Path(tmp_path / "round-1" / "model")).teacher
    assert teacher == student_config(r, str(tmp_path / "round-1" / "model"))
    assert round_recipe(r, 1, None).teacher == r.teacher  # round 1: the recipe's own teacher
