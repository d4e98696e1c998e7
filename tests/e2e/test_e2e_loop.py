"""``reasondistill loop``: student-driven rounds over tiny models, resumed, retrained and self-taught."""

import json

import pytest

from reasondistill import loop
from reasondistill.cli import main
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError


def loop_recipe(tiny_model_dir, cache, **loop_cfg):
    return build(Recipe, {
        "name": "tinyloop",
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 6, "n_eval": 4},
        "teacher": {"backend": "dummy", "options": {"accuracy": 0.7}},
        "generate": {"samples": 2, "rationalize": False, "max_new_tokens": 8, "cache_dir": str(cache)},
        "curate": {"max_per_problem": 1},
        "train": {"student": str(tiny_model_dir), "max_steps": 1, "batch_size": 4, "dtype": "float32",
                  "device": "cpu", "max_length": 128},
        "eval": {"models": ["student_before", "student_after"], "max_new_tokens": 6, "batch_size": 8,
                 "dtype": "float32", "device": "cpu"},
        "report": {"formats": ["md", "html"]},
        "loop": {"rounds": 2, "student_samples": 1, **loop_cfg},
    })


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_loop_two_rounds_resumes_and_reports(tmp_path, tiny_model_dir, monkeypatch):
    import reasondistill.train as train_stage

    out = tmp_path / "loop"
    one = loop.run(loop_recipe(tiny_model_dir, tmp_path / "cache", rounds=1), out)  # stopped after round 1
    assert [r["round"] for r in one["rounds"]] == [1]
    ckpt1 = out / "round-1" / "train" / "model"
    stamp = (ckpt1 / "model.safetensors").stat().st_mtime_ns
    first = json.loads((out / "round-1" / "round.json").read_text())

    real_train = train_stage.run

    def killed_in_round_2(recipe, layout):
        if "round-2" in str(layout.root):
            raise KeyboardInterrupt
        return real_train(recipe, layout)
    monkeypatch.setattr(train_stage, "run", killed_in_round_2)
    with pytest.raises(KeyboardInterrupt):  # more rounds continue the loop; round 2 is killed before training
        loop.run(loop_recipe(tiny_model_dir, tmp_path / "cache"), out)
    monkeypatch.setattr(train_stage, "run", real_train)
    generated = (out / "round-2" / "generate" / "manifest.json").stat().st_mtime_ns
    assert not (out / "round-2" / "train" / "model").exists()

    result = loop.run(loop_recipe(tiny_model_dir, tmp_path / "cache"), out)  # resumes at round 2's training
    assert [r["round"] for r in result["rounds"]] == [1, 2]
    assert (ckpt1 / "model.safetensors").stat().st_mtime_ns == stamp  # round 1 was not redone
    assert (out / "round-2" / "generate" / "manifest.json").stat().st_mtime_ns == generated  # nor round 2's data
    assert result["rounds"][0]["wall_seconds"] == first["wall_seconds"]  # its figures are those measured then
    r1, r2 = result["rounds"]
    # the tiny random student solves nothing: every training problem is picked, its pass rate is 0
    assert r1["problems_picked"] == r2["problems_picked"] == 6 and r1["student_pass_rate"] == 0
    picked = (out / "round-2" / "pick" / "picked.jsonl").read_text().splitlines()
    assert len(picked) == 6
    # retrain from the last checkpoint, on the union of rounds 1..2
    assert manifest(out / "round-2" / "train")["config"]["student"] == str(ckpt1)
    union = (out / "round-2" / "data" / "train.jsonl").read_text().splitlines()
    curated1 = (out / "round-1" / "curate" / "train.jsonl").read_text().splitlines()
    assert r2["train_examples"] == len(union) == len(curated1) + r2["traces_added"]
    assert set(curated1) <= set(union)
    for r in result["rounds"]:
        assert 0 <= r["ci95"][0] <= r["accuracy"] <= r["ci95"][1] <= 1 and r["n_eval"] == 4
    assert result["baseline"]["n_eval"] == 4  # round 0: the untrained student, evaluated in round 1
    assert not (out / "round-2" / "eval" / "student_before").exists()

    on_disk = json.loads((out / "loop.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    report = json.loads((out / "report.json").read_text())
    assert [r["round"] for r in report["loop"]["rounds"]] == [1, 2]
    assert report["student_after"]["accuracy"] == r2["accuracy"]
    html = (out / "report.html").read_text()
    assert "Rounds (reasondistill loop)" in html and "Held-out accuracy per round" in html
    assert "| 2 |" in (out / "report.md").read_text()
    assert "untrained student" in loop.format_table(result)


def test_loop_scratch_and_self_teach(tmp_path, tiny_model_dir):
    out = tmp_path / "loop"
    result = loop.run(loop_recipe(tiny_model_dir, tmp_path / "cache", retrain="scratch", self_teach=True,
                                  student_samples=0, max_problems=4), out)
    ckpt1 = str(out / "round-1" / "train" / "model")
    assert [r["problems_picked"] for r in result["rounds"]] == [4, 4]  # no picking: the first max_problems
    assert manifest(out / "round-2" / "train")["config"]["student"] == str(tiny_model_dir)  # from scratch
    gen1, gen2 = manifest(out / "round-1" / "generate"), manifest(out / "round-2" / "generate")
    assert "dummy" in json.dumps(gen1["config"]) and ckpt1 not in json.dumps(gen1["config"])
    assert ckpt1 in json.dumps(gen2["config"])  # round 1's student is round 2's teacher
    assert result["rounds"][1]["teacher"] == "round-1/train/model"  # relative to the loop folder


def test_loop_rejects_objectives_without_a_curated_union(tmp_path, tiny_model_dir):
    recipe = loop_recipe(tiny_model_dir, tmp_path / "cache")
    recipe.train.method = "dpo"
    with pytest.raises(ConfigError, match="trains on pairs"):
        loop.run(recipe, tmp_path / "never")
    with pytest.raises(ConfigError, match="loop.pick_band"):
        build(Recipe, {"loop": {"pick_band": [0.5, 0.5]}})


def test_cli_loop_smoke(tmp_path, tiny_model_dir, capsys):
    recipe = tmp_path / "r.yaml"
    import yaml
    from dataclasses import asdict
    recipe.write_text(yaml.safe_dump(asdict(loop_recipe(tiny_model_dir, tmp_path / "cache", rounds=1))))
    assert main(["loop", str(recipe), "--rounds", "1", "--out", str(tmp_path / "l"), "loop.student_samples=0",
                 "eval.models=[student_after]"]) == 0
    assert "round" in capsys.readouterr().out and (tmp_path / "l" / "loop.json").is_file()
