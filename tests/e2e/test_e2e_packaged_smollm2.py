"""Shrunken built-in recipe through the real packaged SmolLM2-135M (program teacher)."""

import json

from reasondistill import cli
from reasondistill.io import sha256_file


def test_default_recipe_shrunken_with_real_model(tmp_path, smollm2_dir, capsys):
    out = tmp_path / "run"
    rc = cli.main(["run", "default", "--out", str(out), "problems.n_train=8", "problems.n_eval=6",
                   "train.max_steps=2", "train.batch_size=4", "eval.max_new_tokens=32",
                   f"generate.cache_dir={tmp_path / 'cache'}"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "student_after" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["n_eval"] == 6 and report["task"] == "chain_sum"
    assert report["teacher"]["accuracy"] == 1.0  # the program teacher is always right on chain_sum
    assert report["teacher_calls"] == 8 + 6
    model_dir = out / "train" / "model"
    assert (model_dir / "model.safetensors").exists() and (model_dir / "tokenizer.json").exists()
    train_manifest = json.loads((out / "train" / "manifest.json").read_text())
    assert train_manifest["inputs"] == {"../curate/train.jsonl": sha256_file(out / "curate" / "train.jsonl")}
    assert train_manifest["outputs"]["steps"] == 2
    after = [json.loads(line) for line in (out / "eval" / "student_after" / "samples.jsonl").read_text().splitlines()]
    assert len(after) == 6 and all(s["model"] == "student_after" for s in after)
    assert (out / "recipe.yaml").exists() and "chain_sum" in (out / "recipe.yaml").read_text()

    # every artifact is there, and each stage's manifest names the exact file the stage before wrote
    expected = {
        "problems": ["train.jsonl", "eval.jsonl"], "generate": ["traces.jsonl"], "verify": ["verdicts.jsonl"],
        "curate": ["train.jsonl", "negatives.jsonl", "rejected.jsonl", "pass_rates.jsonl"],
        "train": ["loss.jsonl", "model/config.json"],
        **{f"eval/{m}": ["samples.jsonl", "summary.json"] for m in ("teacher", "student_before", "student_after")},
    }
    for stage, files in expected.items():
        manifest = json.loads((out / stage / "manifest.json").read_text())
        assert manifest["wall_seconds"] >= 0 and manifest["versions"]["transformers"]
        for f in files:
            assert (out / stage / f).exists(), f"{stage}/{f}"
    lineage = [("generate", "problems/train.jsonl"), ("verify", "generate/traces.jsonl"),
               ("curate", "verify/verdicts.jsonl"), ("train", "curate/train.jsonl"),
               ("eval/student_after", "problems/eval.jsonl")]
    for stage, upstream in lineage:
        inputs = json.loads((out / stage / "manifest.json").read_text())["inputs"]
        key = "../" * stage.count("/") + "../" + upstream  # named relative to the stage folder
        assert inputs[key] == sha256_file(out / upstream), (stage, upstream)
    for name in ("report.md", "report.html"):
        assert (out / name).stat().st_size > 500
