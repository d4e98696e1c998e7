"""The built-in `reproduce-*` comparisons end to end on a tiny student: the recipe as shipped, with
only the student, sizes and budget made small (the figures are the README's, from full runs)."""

import json
import shutil

import pytest

from reasondistill import compare, pipeline
from reasondistill.config import BUILTIN_RECIPES, load_recipe

TINY = ["problems.n_train=8", "problems.n_eval=4", "compare.max_steps=1", "compare.train_seeds=2",
        "train.batch_size=4", "train.dtype=float32", "train.device=cpu", "eval.max_new_tokens=16",
        "eval.dtype=float32", "eval.device=cpu"]


def tiny(name, tiny_model_dir, cache, *more):
    return load_recipe(name, [f"train.student={tiny_model_dir}", f"generate.cache_dir={cache}", *TINY, *more])


@pytest.mark.parametrize("name", [n for n in BUILTIN_RECIPES if n.startswith("reproduce-")])
def test_reproduce_recipes_load_with_seeds_and_a_program_teacher(name):
    recipe = load_recipe(name)
    assert recipe.compare.train_seeds >= 3 and len(compare.entries(recipe)) >= 3
    assert all(t.backend == "program" for t in recipe.teachers())


def test_reproduce_on_policy_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    """SFT, then SFT continued / on-policy distillation toward the live teacher / the no-teacher control
    from it. The live teacher (``run:on-policy-teacher``) is a finished run in the runs root here (the
    tiny model), so nothing trains it; one training seed (seeds per entry: ``test_e2e_compare.py``)."""
    teacher = tmp_path / "runs" / "on-policy-teacher"
    shutil.copytree(tiny_model_dir, teacher / "train" / "model")
    (teacher / "report.json").write_text(json.dumps({"student_after": {"accuracy": 1.0, "ci95": [0.9, 1.0]}}))
    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path / "runs"))
    recipe = tiny("reproduce-on-policy", tiny_model_dir, tmp_path / "cache", "compare.train_seeds=1",
                  "compare.entries.sft+gkd.objective.max_new_tokens=4",
                  "compare.entries.sft+gkd.objective.teacher_dtype=float32",
                  "compare.entries.sft+no-teacher.objective.max_new_tokens=4")
    rows = compare.run(recipe, tmp_path / "run")
    assert [r["objective"] for r in rows] == ["sft", "sft+sft", "sft+gkd", "sft+no-teacher"]
    for r in rows:  # on-policy rows count the rows they trained on and what the student sampled
        c = r["cost"]
        assert c["student_tokens_trained"] > 0 and c["train_flops"] == 6 * c["student_parameters"] * c["student_tokens_trained"]
        sampled = r["objective"] in ("sft+gkd", "sft+no-teacher")
        assert (c["student_tokens_sampled"] is not None) == sampled, r["objective"]
        if sampled:
            assert c["student_tokens_sampled"] > 0 and c["sample_flops"] == 2 * c["student_parameters"] * c["student_tokens_sampled"]
    assert all(r["vs_reference"]["reference"] == "sft" for r in rows[1:])
    entries = tmp_path / "run" / "compare" / "entries"

    def trained(name):
        m = json.loads((entries / name / "train" / "manifest.json").read_text())
        train = m["config"].get("train", m["config"])  # sft's config is its TrainConfig alone
        assert train["student"].endswith("sft/train/model"), name  # all three start from SFT
        return m

    trained("sft+sft")
    gkd = trained("sft+gkd")
    assert gkd["config"]["gkd"]["teacher"] == str((teacher / "train" / "model").resolve())
    assert gkd["outputs"]["cached_seqs"] == 0 and gkd["outputs"]["on_policy_seqs"] == 4  # fully on-policy
    control = trained("sft+no-teacher")
    assert control["outputs"]["advantage"] == -1.0 and control["outputs"]["on_policy_seqs"] == 4
    assert control["config"]["train"]["learning_rate"] == gkd["config"]["train"]["learning_rate"] == 5e-5


def test_reproduce_token_kd_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    """SFT and three token-KD entries on the same curated traces, scored by the teacher each KD entry's
    backend config names (``run:on-policy-teacher``, a finished run in the runs root here)."""
    teacher = tmp_path / "runs" / "on-policy-teacher"
    shutil.copytree(tiny_model_dir, teacher / "train" / "model")
    (teacher / "report.json").write_text(json.dumps({"student_after": {"accuracy": 1.0, "ci95": [0.9, 1.0]}}))
    monkeypatch.setenv(pipeline.RUNS_ENV, str(tmp_path / "runs"))
    recipe = tiny("reproduce-token-kd", tiny_model_dir, tmp_path / "cache", "compare.train_seeds=1")
    rows = compare.run(recipe, tmp_path / "run")
    assert [r["objective"] for r in rows] == ["sft", "kd-forward", "kd-reverse", "kd-jsd", "sft+sft", "sft+kd-reverse"]
    entries = tmp_path / "run" / "compare" / "entries"
    inputs = set()
    for name in ("sft", "kd-forward", "kd-reverse", "kd-jsd", "sft+sft", "sft+kd-reverse"):
        found = json.loads((entries / name / "train" / "manifest.json").read_text())["inputs"]
        assert any(k.endswith("sft/train/model/model.safetensors") for k in found) == name.startswith("sft+"), name
        inputs |= {(k, v) for k, v in found.items() if not k.endswith("model.safetensors")}
    assert len(inputs) == 1 and next(iter(inputs))[0].endswith("curate/train.jsonl")  # the same traces, byte for byte
    losses = set()
    for name in ("kd-forward", "kd-reverse", "kd-jsd", "sft+kd-reverse"):
        m = json.loads((entries / name / "train" / "manifest.json").read_text())
        start = m["config"]["train"]["student"]
        assert start.endswith("sft/train/model") == name.startswith("sft+"), (name, start)  # warm start only there
        assert m["config"]["kd"]["teacher"]["model"] == str((teacher / "train" / "model").resolve()), name
        assert m["config"]["kd"]["ce_weight"] == 0.0
        assert m["outputs"]["teacher_scored"] + m["outputs"]["teacher_scored_cached"] > 0, name
        losses.add(m["config"]["kd"]["loss"])
    assert losses == {"forward_kl", "reverse_kl", "jsd"}


@pytest.mark.slow  # five entries x two seeds (~2.5 min); match_tokens alone: test_e2e_compare.py
def test_reproduce_learnability_end_to_end(tmp_path, tiny_model_dir):
    # 2 steps: the long traces' entries at `short`'s tokens need at least one step of their own
    recipe = tiny("reproduce-learnability", tiny_model_dir, tmp_path / "cache", "compare.max_steps=2")
    rows = compare.run(recipe, tmp_path / "run")
    assert [r["objective"] for r in rows] == ["short", "long", "mix-1to4", "long-tokens", "mix-1to4-tokens"]
    for r in rows[3:]:  # equal tokens: fewer steps than `short` where the traces are longer, as many tokens
        short = rows[0]["cost"]["student_tokens_trained"]
        per_step = r["cost"]["student_tokens_trained"] / r["steps"]
        assert abs(r["cost"]["student_tokens_trained"] - short) <= per_step, (r["objective"], short)
    traces = [json.loads(line) for line in (tmp_path / "run" / "generate" / "traces.jsonl").read_text().splitlines()]
    styles = {t["teacher"]: t["meta"]["program_style"] for t in traces}
    assert styles == {"short": "terse", "long": "verbose"}
    entries = tmp_path / "run" / "compare" / "entries"
    for name, teachers in (("short", {"short"}), ("long", {"long"})):
        kept = [json.loads(line) for line in (entries / name / "curate" / "train.jsonl").read_text().splitlines()]
        assert {k["meta"]["teacher"] for k in kept} == teachers, name
    mixed = json.loads((entries / "mix-1to4" / "curate" / "manifest.json").read_text())
    assert sum(mixed["outputs"]["policy_reports"]["not_share_teacher"]["problems_per_teacher"].values()) == 8
    for r in rows:
        assert r["seeds"] == 2 and len(r["per_seed"]) == 2 and r["interval"]["seeds_measured"]
        if r["objective"] != "short":
            assert r["vs_reference"]["reference"] == "short"
            assert r["vs_reference"]["verdict"] in ("better", "worse", "no detectable difference")
        if r["objective"] in ("long", "mix-1to4"):  # the paper's figure beside ours, with our reading of it
            assert r["paper"]["delta"] == {"long": -7.1, "mix-1to4": 2.5}[r["objective"]]
            assert r["reproduction"] in ("reproduced", "reversed", "no detectable difference")
        else:
            assert "paper" not in r
        assert r["vs_untrained"]["n"] == 4
    assert "(reference)" in compare.format_table(rows, compare.load_baseline(tmp_path / "run"),
                                                  compare.load_teacher(tmp_path / "run"))


@pytest.mark.slow
def test_reproduce_redi_end_to_end(tmp_path, tiny_model_dir):
    recipe = tiny("reproduce-redi", tiny_model_dir, tmp_path / "cache")
    rows = compare.run(recipe, tmp_path / "run")
    assert [r["objective"] for r in rows] == ["sft", "sft+sft", "sft+redi", "sft+dpo", "sft+simpo"]
    pairs = (tmp_path / "run" / "pairs" / "pairs.jsonl").read_text().splitlines()
    assert pairs  # slipped traces became the rejected side of preference pairs
    assert all(r["seeds"] == 2 for r in rows)
    assert all(r["cost"]["student_tokens_trained"] > 0 for r in rows)  # every trainer counts, SimPO's too
