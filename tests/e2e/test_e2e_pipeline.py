"""Whole pipeline: dummy teacher + tiny student (fast), checks artifacts, lineage and re-runs."""

import json

from reasondistill import pipeline
from reasondistill.config import Recipe, build
from reasondistill.io import sha256_file


def tiny_recipe(tiny_model_dir, cache):
    return build(Recipe, {
        "name": "tiny",
        "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                     "n_train": 12, "n_eval": 8},
        "teacher": {"backend": "dummy", "options": {"accuracy": 0.5}},
        "generate": {"samples": 2, "rationalize": True, "cache_dir": str(cache)},
        "train": {"student": str(tiny_model_dir), "max_steps": 2, "batch_size": 4, "dtype": "float32",
                  "device": "cpu"},
        "eval": {"max_new_tokens": 8, "batch_size": 8, "dtype": "float32", "device": "cpu", "samples": 2},
    })


def test_pipeline_tiny_end_to_end_and_rerun(tmp_path, tiny_model_dir):
    recipe = tiny_recipe(tiny_model_dir, tmp_path / "cache")
    out = tmp_path / "run"
    report = pipeline.run(recipe, out)

    for key, typ in [("task", str), ("n_eval", int), ("teacher_calls", int), ("cached_teacher_calls", int),
                     ("wall_seconds", float)]:
        assert isinstance(report[key], typ), key
    assert report["task"] == "chain_sum" and report["n_eval"] == 8
    for m in ("teacher", "student_before", "student_after"):
        lo, hi = report[m]["ci95"]
        assert 0 <= lo <= report[m]["accuracy"] <= hi <= 1
    # dummy teacher: 12 problems x 2 samples + hinted retries + 8 greedy + 16 sampled eval answers
    gen = json.loads((out / "generate" / "manifest.json").read_text())
    assert report["teacher_calls"] == gen["outputs"]["n_traces"] + 8 * 3
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["student_after"] == report["student_after"]
    assert (out / "report.md").exists() and (out / "report.html").exists()

    # lineage: each stage's manifest names the hash of the file the previous stage wrote
    problems_hash = sha256_file(out / "problems" / "train.jsonl")
    assert gen["inputs"]["../problems/train.jsonl"] == problems_hash  # named relative to the stage folder
    ver = json.loads((out / "verify" / "manifest.json").read_text())
    assert ver["inputs"]["../generate/traces.jsonl"] == sha256_file(out / "generate" / "traces.jsonl")
    cur = json.loads((out / "curate" / "manifest.json").read_text())
    assert cur["inputs"]["../verify/verdicts.jsonl"] == sha256_file(out / "verify" / "verdicts.jsonl")
    tr = json.loads((out / "train" / "manifest.json").read_text())
    assert tr["inputs"]["../curate/train.jsonl"] == sha256_file(out / "curate" / "train.jsonl")
    for m in (gen, ver, cur, tr):
        assert m["versions"]["torch"].startswith("2.13") and m["wall_seconds"] >= 0 and m["config"]

    # unchanged re-run: zero teacher calls, same results
    again = pipeline.run(recipe, out)
    assert again["teacher_calls"] == 0
    assert again["student_after"]["accuracy"] == report["student_after"]["accuracy"]


def test_pipeline_dispatches_preference_objective_on_pairs(tmp_path, tiny_model_dir):
    """`train.method: redi` builds pairs from the curated correct/incorrect traces and trains on them."""
    recipe = tiny_recipe(tiny_model_dir, tmp_path / "cache")
    recipe.train.method, recipe.train.objective = "redi", {"alpha": 0.5}
    recipe.train.max_length = 128
    recipe.eval.models = ["student_after"]
    out = tmp_path / "run"
    report = pipeline.run(recipe, out)
    pairs = (out / "pairs" / "pairs.jsonl").read_text().splitlines()
    assert pairs and all({"prompt", "chosen", "rejected"} <= set(json.loads(p)) for p in pairs)
    manifest = json.loads((out / "train" / "manifest.json").read_text())
    assert manifest["inputs"] == {"../pairs/pairs.jsonl": sha256_file(out / "pairs" / "pairs.jsonl")}
    assert report["student_after"]["n"] == 8


def test_unchanged_rerun_loads_no_model_and_from_until_slice(tmp_path, tiny_model_dir):
    """A finished run re-runs in a fresh interpreter without importing the training stack or any
    model, with zero teacher calls; --until stops early and --from re-runs a tail of the stages."""
    import subprocess
    import sys
    import time

    import yaml

    from reasondistill.config import to_dict

    recipe = tiny_recipe(tiny_model_dir, tmp_path / "cache")
    recipe.eval.models = ["teacher", "student_after"]
    recipe.eval.samples = 0
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(to_dict(recipe)))
    out = tmp_path / "run"
    until = pipeline.run(recipe, out, last="curate")
    assert set(until) == {"problems", "generate", "verify", "curate"} and not (out / "train").exists()
    first = pipeline.run(recipe, out)
    assert first["teacher_calls"] == 8  # generation was done by the --until run; only the teacher's evaluation
    code = ("import sys, json; from reasondistill.cli import main; rc = main(['run', sys.argv[1], '--out', sys.argv[2]]);"
            "print(json.dumps([rc, sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'accelerate') "
            "if m in sys.modules)]))")
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True, text=True,
                          timeout=120)
    wall = time.time() - started
    rc, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert rc == 0 and heavy == [], done.stderr[-2000:]
    assert "teacher calls 0 (cached" in done.stdout and wall < 30
    report = json.loads((out / "report.json").read_text())
    assert report["teacher_calls"] == 0 and report["run_cost"]["teacher_calls"] == first["teacher_calls"] + 12 * 2 + \
        json.loads((out / "generate" / "manifest.json").read_text())["outputs"]["n_hinted"]

    trained = (out / "train" / "manifest.json").stat().st_mtime_ns
    again = pipeline.run(recipe, out, first="evaluate")  # re-evaluates; training is kept
    assert (out / "train" / "manifest.json").stat().st_mtime_ns == trained
    assert again["student_after"]["accuracy"] == first["student_after"]["accuracy"]
