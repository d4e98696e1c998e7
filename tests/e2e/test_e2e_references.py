"""``run:NAME`` model references: another recipe's trained student used as a model, trained once."""

import json
import re

import pytest
import yaml

from reasondistill import config, pipeline
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError


def tiny_data(tiny_model_dir, cache, name="tinyref"):
    """A built-in-like recipe (dummy teacher, tiny student), small enough to run in seconds."""
    return {
        "name": name,
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 8, "n_eval": 6},
        "teacher": {"backend": "dummy", "options": {"accuracy": 0.7}},
        "generate": {"samples": 1, "rationalize": False, "cache_dir": str(cache)},
        "train": {"student": str(tiny_model_dir), "max_steps": 1, "batch_size": 4, "dtype": "float32",
                  "device": "cpu", "max_length": 128},
        "eval": {"models": ["student_after"], "max_new_tokens": 8, "batch_size": 8, "dtype": "float32",
                 "device": "cpu"},
    }


def test_unknown_reference_fails_early_listing_builtins(tmp_path):
    recipe = build(Recipe, {"teacher": {"backend": "transformers", "model": "run:nope"}})
    with pytest.raises(ConfigError, match=re.escape("teacher.model = 'run:nope': 'nope' is neither a built-in "
                                                    "recipe (default")):
        pipeline.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_run_reference_trains_once_then_reuses(tmp_path, tiny_model_dir, monkeypatch):
    ref_file = tmp_path / "tinyref.yaml"
    ref_file.write_text(yaml.safe_dump(tiny_data(tiny_model_dir, tmp_path / "cache")))
    monkeypatch.setitem(config.BUILTIN_RECIPES, "tinyref", str(ref_file))  # a built-in-like name
    monkeypatch.setattr(config, "builtin_recipe_path", lambda name: ref_file)
    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path / "runs"))

    user = build(Recipe, {**tiny_data(tiny_model_dir, tmp_path / "cache", name="user"),
                          "train": {**tiny_data(tiny_model_dir, tmp_path)["train"], "student": "run:tinyref"}})
    out = tmp_path / "user"
    report = pipeline.run(user, out)

    ckpt = tmp_path / "runs" / "tinyref" / "train" / "model"
    assert (ckpt / "config.json").is_file()  # the referenced recipe ran first, in <runs root>/<its name>
    sub_report = json.loads((tmp_path / "runs" / "tinyref" / "report.json").read_text())
    refs = json.loads((out / "references.json").read_text())
    assert refs["train.student"]["path"] == str(ckpt.resolve())
    assert refs["train.student"]["accuracy"] == sub_report["student_after"]["accuracy"]
    assert report["references"] == refs
    train_manifest = json.loads((out / "train" / "manifest.json").read_text())
    assert train_manifest["config"]["student"] == str(ckpt.resolve())  # trained from that checkpoint
    assert "run:tinyref" in (out / "recipe.yaml").read_text()  # the recipe as typed

    # a finished referenced run is reused: nothing runs again, not even a cached stage
    def no_rerun(*a, **k):
        raise AssertionError("the referenced run was run again")
    monkeypatch.setattr(pipeline, "run", no_rerun)
    again = pipeline.resolve_reference("run:tinyref", "teacher.model")
    assert again == refs["train.student"]
    resolved = pipeline.resolve_references(build(Recipe, {"teacher": {"backend": "transformers",
                                                                      "model": "run:tinyref"}}))
    assert resolved.teacher.model == str(ckpt.resolve())


def test_reference_cycle_is_an_error(tmp_path, monkeypatch, tiny_model_dir):
    loop_file = tmp_path / "selfref.yaml"
    data = tiny_data(tiny_model_dir, tmp_path / "cache", name="selfref")
    data["train"]["student"] = f"run:{loop_file}"
    loop_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path / "runs"))
    with pytest.raises(ConfigError, match="reference cycle"):
        pipeline.resolve_reference(f"run:{loop_file}", "train.student")
