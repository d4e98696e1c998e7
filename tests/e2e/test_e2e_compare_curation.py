"""`compare` over curation choices: entries with their own `curate` settings get their own curated data."""

import json
import re

import pytest

from reasondistill import compare
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError

from .test_e2e_compare import compare_recipe


def lines(path):
    return path.read_text().splitlines()


@pytest.mark.slow  # three entries, each trained in its own spawned process: minutes on a loaded 2-core machine
def test_curation_entries_train_on_their_own_curated_sets(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "all", "method": "sft"},
        {"name": "neg", "method": "redi", "init": "all", "curate": {"max_per_problem": 1}},
        {"name": "short", "method": "sft", "curate": {"max_per_problem": 2, "length": {"shortest": 1, "unit": "chars"}}},
    ], max_steps=1)
    recipe.generate.samples = 3
    recipe.generate.rationalize = False
    recipe.curate.max_per_problem = 3
    recipe.eval.models = ["teacher", "student_after"]
    recipe.compare.baseline = False
    out = tmp_path / "run"
    rows = compare.run(recipe, out)

    shared = lines(out / "curate" / "train.jsonl")
    own = lines(out / "compare" / "entries" / "short" / "curate" / "train.jsonl")
    assert not (out / "compare" / "entries" / "all" / "curate").exists()  # no curate settings: the shared set
    by_problem = {json.loads(x)["meta"]["problem_id"] for x in shared}
    assert len(own) == len(by_problem) < len(shared)  # the shortest trace per problem instead of up to 3
    assert set(own) <= set(shared)
    neg = lines(out / "compare" / "entries" / "neg" / "curate" / "train.jsonl")
    assert [r["curated"] for r in rows] == [len(shared), len(neg), len(own)]
    # a preference entry with its own curation builds its pairs in its own folder, not the shared one
    assert (out / "compare" / "entries" / "neg" / "pairs" / "pairs.jsonl").is_file() and not (out / "pairs").exists()
    short_cfg = json.loads((out / "compare" / "entries" / "short" / "curate" / "manifest.json").read_text())
    assert short_cfg["config"]["curate"]["length"] == {**short_cfg["config"]["curate"]["length"], "shortest": 1,
                                                       "unit": "chars"}
    assert short_cfg["config"]["curate"]["max_per_problem"] == 2
    assert short_cfg["config"]["curate"]["dedup"] is True  # the settings it does not name are the recipe's
    for name, data in (("all", "../../../../curate/train.jsonl"), ("short", "../curate/train.jsonl")):
        train = json.loads((out / "compare" / "entries" / name / "train" / "manifest.json").read_text())
        assert data in train["inputs"]  # each entry trained on its own curated file (named from its train folder)
    teacher = compare.load_teacher(out)  # the teacher on the same held-out problems
    assert 0 <= teacher["accuracy"] <= 1 and "(teacher)" in compare.format_table(rows, None, teacher)


def test_bad_curate_override_fails_before_any_work(tmp_path):
    recipe = build(Recipe, {"compare": {"entries": [{"name": "a", "curate": {"max_per_problem": 0}}]}})
    with pytest.raises(ConfigError, match=re.escape("curate.max_per_problem must be >= 1")):
        compare.run(recipe, tmp_path / "never")
    recipe = build(Recipe, {"compare": {"entries": [{"name": "a", "curate": {"nope": 1}}]}})
    with pytest.raises(ConfigError, match=re.escape("unknown recipe key 'compare.a.curate.nope'")):
        compare.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_loop_entry_spends_the_same_step_budget_in_rounds(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "plain", "method": "sft"},
        {"name": "loop", "method": "sft", "loop": {"rounds": 2, "student_samples": 1}},
    ], max_steps=2)
    recipe.generate.rationalize = False
    out = tmp_path / "run"
    rows = compare.run(recipe, out)
    plain, looped = rows
    rounds = json.loads((out / "compare" / "entries" / "loop" / "loop" / "loop.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    for r in (1, 2):  # each round trains half the budget; round 2 continues from round 1's checkpoint
        train = json.loads((out / "compare" / "entries" / "loop" / "loop" / f"round-{r}" / "train" /
                            "manifest.json").read_text())
        assert train["outputs"]["steps"] == 1
    assert train["config"]["student"].endswith("round-1/train/model")
    assert plain["steps"] == looped["steps"] == 2
    assert looped["curated"] == rounds[-1]["train_examples"] > 0
    # the final round's student is evaluated on the compare's held-out problems, paired with the baseline
    assert looped["vs_untrained"]["n"] == plain["vs_untrained"]["n"] > 0
    ev = out / "compare" / "entries" / "loop" / "eval" / "summary.json"
    assert json.loads(ev.read_text())["accuracy"] == looped["accuracy"] == rounds[-1]["accuracy"]
    assert compare.run(recipe, out) == rows  # a re-run reuses every round and keeps the figures


def test_scratch_loop_entry_trains_every_round_on_the_whole_budget(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "loop", "method": "sft", "loop": {"rounds": 2, "student_samples": 1, "retrain": "scratch"}},
    ], max_steps=2)
    recipe.generate.rationalize = False
    recipe.compare.baseline = False
    out = tmp_path / "run"
    [row] = compare.run(recipe, out)
    for r in (1, 2):  # each round starts from train.student and trains the entries' whole budget
        train = json.loads((out / "compare" / "entries" / "loop" / "loop" / f"round-{r}" / "train" /
                            "manifest.json").read_text())
        assert train["outputs"]["steps"] == 2 and train["config"]["student"] == str(tiny_model_dir)
    assert row["steps"] == 2


@pytest.mark.parametrize("loop_cfg,msg", [
    ({"rounds": 3}, "compare.max_steps (4) must be divisible by rounds (3)"),
    ({"rounds": 2, "retrain": "nope"}, "loop.retrain"),
    ({"rounds": 0}, "loop.rounds must be >= 1"),
])
def test_bad_loop_entry_fails_before_any_work(tmp_path, loop_cfg, msg):
    recipe = build(Recipe, {"compare": {"max_steps": 4, "entries": [{"name": "a", "loop": loop_cfg}]}})
    with pytest.raises(ConfigError, match=re.escape(msg)):
        compare.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()
