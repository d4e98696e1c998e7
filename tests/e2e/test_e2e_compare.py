"""`compare`: objectives on the same data and step budget, each in its own process."""

import json
import re

import pytest

from reasondistill import compare
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError
from reasondistill.layout import Layout

from .test_e2e_pipeline import tiny_recipe


def base_n(tmp_path):
    lines = (tmp_path / "run" / "compare" / "student_before" / "samples.jsonl").read_text().splitlines()
    return sum(json.loads(line)["sample_idx"] == 0 for line in lines)  # greedy answers: one per problem


def compare_recipe(tiny_model_dir, cache, entries, max_steps=2):
    recipe = tiny_recipe(tiny_model_dir, cache)
    recipe.compare.entries = entries
    recipe.compare.max_steps = max_steps
    recipe.train.max_length = 128
    return recipe


def test_compare_trains_each_entry_and_writes_compare_json(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "sft", "method": "sft"},
        {"name": "sft+redi", "method": "redi", "init": "sft", "objective": {"alpha": 0.5}},
    ])
    rows = compare.run(recipe, tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "compare.json").read_text())
    assert on_disk == rows and [r["objective"] for r in rows] == ["sft", "sft+redi"]
    for r in rows:
        assert set(r) >= {"objective", "accuracy", "ci95", "tokens_per_answer", "wall_seconds", "peak_rss_mb"}
        assert 0 <= r["ci95"][0] <= r["accuracy"] <= r["ci95"][1] <= 1
        assert r["peak_rss_mb"] > 50 and r["wall_seconds"] > 0 and r["steps"] == 2
        c = r["cost"]
        assert c["student_parameters"] > 1000 and c["train_cpu_seconds"] > 0 and c["train_wall_seconds"] > 0
        assert c["teacher_tokens_generated"] > 0 and c["generate_wall_seconds"] >= 0
    sft = rows[0]["cost"]  # SFT counts its tokens: 2 steps of 4 examples, without padding
    assert 0 < sft["student_tokens_trained"] <= 2 * 4 * recipe.train.max_length
    assert sft["train_flops"] == 6 * sft["student_parameters"] * sft["student_tokens_trained"]
    assert (tmp_path / "run" / "compare" / "accuracy_vs_compute.png").read_bytes()[:4] == b"\x89PNG"
    assert rows[0]["points_per_cpu_hour"] == pytest.approx(
        100 * rows[0]["vs_untrained"]["delta"] / (sft["train_cpu_seconds"] / 3600))
    redi = json.loads((tmp_path / "run" / "compare" / "entries" / "sft+redi" / "train" / "manifest.json").read_text())
    assert redi["config"]["train"]["student"].endswith("sft/train/model")  # started from the SFT checkpoint
    assert "sft" in compare.format_table(rows)
    # the untrained student, on the same held-out problems, is the baseline row of the table
    base = compare.load_baseline(tmp_path / "run")
    assert base["model"] == recipe.train.student and 0 <= base["accuracy"] <= 1
    assert "(untrained)" in compare.format_table(rows, base)
    for r in rows:  # each entry against the untrained student, problem by problem
        vs = r["vs_untrained"]
        assert vs["n"] == base_n(tmp_path) and vs["ci95"][0] <= vs["delta"] <= vs["ci95"][1]
        assert vs["verdict"] in ("better", "worse", "no detectable difference") and not vs["seeds_measured"]
    assert rows[1]["vs_reference"]["reference"] == "sft" and "vs_reference" not in rows[0]
    # a re-run reuses every checkpoint and evaluation, and reports the figures measured when they ran
    assert compare.run(recipe, tmp_path / "run") == rows


def test_train_seeds_train_every_entry_per_seed_and_rows_are_seed_means(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "sft", "method": "sft"},
        {"name": "sft+redi", "method": "redi", "init": "sft", "objective": {"alpha": 0.5}},
    ], max_steps=1)
    recipe.compare.train_seeds = 2
    recipe.compare.baseline = False
    rows = compare.run(recipe, tmp_path / "run")
    entries = tmp_path / "run" / "compare" / "entries"
    for name in ("sft", "sft+redi"):
        configs = [json.loads((entries / name / sub / "train" / "manifest.json").read_text())["config"]
                   for sub in (".", "seed-1")]
        seeds = [c.get("train", c)["seed"] for c in configs]
        assert seeds == [0, 1]  # another data order per training seed
    redi1 = json.loads((entries / "sft+redi" / "seed-1" / "train" / "manifest.json").read_text())
    assert redi1["config"]["train"]["student"].endswith("sft/seed-1/train/model")  # seed k starts from seed k
    for r in rows:
        assert r["seeds"] == 2 and len(r["per_seed"]) == 2
        assert r["accuracy"] == pytest.approx(sum(r["per_seed"]) / 2)
        assert r["interval"]["n_seeds"] == [2] and r["interval"]["seeds_measured"]
    vs = rows[1]["vs_reference"]
    assert vs["reference"] == "sft" and vs["n_seeds"] == [2, 2] and vs["verdict"] in (
        "better", "worse", "no detectable difference")
    assert vs["delta"] == pytest.approx(rows[1]["accuracy"] - rows[0]["accuracy"])
    assert vs["seeds_paired"]  # seed k of sft+redi continues seed k of sft: compared seed by seed
    diffs = [x - y for x, y in zip(rows[1]["per_seed"], rows[0]["per_seed"])]
    assert vs["se_seeds"] ** 2 == pytest.approx(((diffs[0] - diffs[1]) ** 2 / 2) / 2)  # var of 2 differences / 2
    for r in rows:  # 2 seeds: their noise, split into flips and training, on the same problems
        noise = r["seed_noise"]
        assert noise["n_seeds"] == 2 and noise["sd"] == pytest.approx(abs(r["per_seed"][0] - r["per_seed"][1]) / 2 ** 0.5)
        assert noise["sd"] ** 2 == pytest.approx(noise["sd_flips"] ** 2 + noise["sd_training"] ** 2) or \
            noise["sd_training"] == 0.0
    table = compare.format_table(rows)
    assert "(reference)" in table and "t over training seeds" in table and "seed by seed" in table
    assert "seed noise" in table and f"  sft: {100 * rows[0]['seed_noise']['sd']:.2f} = " in table
    assert compare.run(recipe, tmp_path / "run") == rows  # every seed's checkpoint and evaluation reused


def test_bad_train_seeds_and_reference_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"compare.train_seeds must be >= 1 \(a count\)"):
        build(Recipe, {"compare": {"entries": [{"name": "a"}], "train_seeds": 0}})
    recipe = build(Recipe, {"compare": {"entries": [{"name": "a"}], "reference": "b"}})
    with pytest.raises(ConfigError, match="compare.reference 'b' names no entry"):
        compare.run(recipe, tmp_path / "never")
    recipe = build(Recipe, {"compare": {"entries": [{"name": "a", "train": {"seed": 3}}]}})
    with pytest.raises(ConfigError, match="use compare.train_seeds"):
        compare.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("entries,msg", [
    ([], "compare.entries is empty"),
    ([{"name": "a", "method": "nope"}], "unknown training objective (train.method) 'nope'"),
    ([{"name": "a", "method": "redi", "objective": {"alpha": 2}}], "redi.alpha = 2"),
    ([{"name": "a", "init": "b"}], "init 'b' must name an earlier entry"),
    ([{"name": "a"}, {"name": "a"}], "duplicate name 'a'"),
    ([{"name": "a", "lr": 1}], "unknown recipe key 'compare.entries[0].lr'"),
])
def test_bad_compare_entries_fail_before_any_work(entries, msg, tmp_path):
    recipe = build(Recipe, {"compare": {"entries": entries}})
    with pytest.raises(ConfigError, match=re.escape(msg)):
        compare.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_token_budget_gives_every_entry_the_same_tokens_from_its_own_data(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "all", "method": "sft"},
        {"name": "one-each", "method": "sft", "curate": {"max_per_problem": 1}},
    ], max_steps=-1)
    recipe.compare.max_tokens = 1200
    recipe.compare.baseline = False
    rows = compare.run(recipe, tmp_path / "run")
    for r in rows:  # steps differ with each entry's mean example length; tokens land near the budget
        tokens = r["cost"]["student_tokens_trained"]
        per_step = tokens / r["steps"]
        assert abs(tokens - 1200) <= per_step / 2 + 1, (r["objective"], tokens, r["steps"])


def test_an_entry_can_match_the_tokens_an_earlier_entry_trained(tmp_path, tiny_model_dir):
    """Equal steps for one entry, equal tokens for the next: ``one-each`` trains on half the traces
    per problem, so its steps come from its own mean example length and ``all``'s tokens."""
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "all", "method": "sft", "curate": {"length": {"longest": 1}}},
        {"name": "short", "method": "sft", "curate": {"length": {"shortest": 1}}, "match_tokens": "all"},
    ], max_steps=3)
    recipe.compare.baseline = False
    rows = {r["objective"]: r for r in compare.run(recipe, tmp_path / "run")}
    target = rows["all"]["cost"]["student_tokens_trained"]
    tokens, steps = rows["short"]["cost"]["student_tokens_trained"], rows["short"]["steps"]
    assert rows["all"]["steps"] == 3
    entry = compare.entries(recipe)[1]
    own = compare.entry_layout(Layout(tmp_path / "run"), entry).path("curated")  # its own (shortest) traces
    assert steps == compare.steps_for_tokens(recipe, recipe.train, own, target)
    assert abs(tokens - target) <= tokens / steps / 2 + 1, (tokens, target, steps)


@pytest.mark.parametrize("compare_cfg,entries,msg", [
    ({"max_steps": 4}, [{"name": "a", "match_tokens": "b"}, {"name": "b"}], "'b' must name an earlier entry"),
    ({"max_steps": 4}, [{"name": "a"}, {"name": "b", "method": "dpo", "init": "a", "match_tokens": "a"}],
     "entry 'b' (method dpo) has no token count known before training"),
    ({"max_tokens": 1000}, [{"name": "a"}, {"name": "b", "match_tokens": "a"}],
     "compare.max_tokens already gives every entry the same tokens"),
    ({"max_tokens": 1000, "max_steps": 4}, [{"name": "a"}], "two budgets; set one of them"),
    ({"max_seconds": 60, "max_steps": 4}, [{"name": "a"}], "compare.max_steps and compare.max_seconds are two"),
    ({"max_seconds": 60}, [{"name": "l", "loop": {"rounds": 2}}], "entry 'l' (a loop entry) cannot be given a "
     "budget in seconds"),
    ({"max_tokens": 1000}, [{"name": "a"}, {"name": "b", "method": "dpo", "init": "a"}],
     "entry 'b' (method dpo) cannot be given a token budget"),
    ({"max_tokens": 1000}, [{"name": "l", "loop": {"rounds": 2}}], "entry 'l' (a loop entry)"),
    # an entry's own budget where the compare computes its steps: refused, never silently replaced
    ({"max_tokens": 1000}, [{"name": "a", "train": {"max_steps": 5}}],
     "(a): train.max_steps is a budget of its own, but compare.max_tokens sets this entry's steps"),
    ({"max_steps": 4}, [{"name": "a"}, {"name": "b", "match_tokens": "a", "train": {"epochs": 2}}],
     "(b): train.epochs is a budget of its own, but match_tokens sets"),
    ({"max_steps": 4}, [{"name": "l", "loop": {"rounds": 2}, "train": {"max_steps": 6}}],
     "(l): train.max_steps is a budget of its own, but loop sets"),
])
def test_impossible_token_budgets_are_refused_before_any_work(tmp_path, compare_cfg, entries, msg):
    recipe = build(Recipe, {"compare": {"entries": entries, **compare_cfg}})
    with pytest.raises(ConfigError, match=re.escape(msg)):
        compare.run(recipe, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_budget_in_seconds_gives_each_entry_the_steps_its_own_step_time_fits(tmp_path, tiny_model_dir):
    """Each entry's steps come from a timed probe of its own training, kept in ``budget.json``: its
    other seeds and a rerun train the same steps without probing again."""
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "sft", "method": "sft"},
        {"name": "multitask", "method": "multitask"},
    ], max_steps=-1)
    recipe.compare.max_seconds = 2.0
    recipe.compare.baseline = False
    recipe.compare.train_seeds = 2
    rows = compare.run(recipe, tmp_path / "run")
    entries = tmp_path / "run" / "compare" / "entries"
    for r in rows:
        budget = json.loads((entries / r["objective"] / "budget.json").read_text())
        assert budget["probe_steps"] == compare.PROBE_STEPS and budget["seconds_per_step"] > 0
        assert r["steps"] == budget["steps"] == int(2.0 // budget["seconds_per_step"]) >= 1
        trained = json.loads((entries / r["objective"] / "seed-1" / "train" / "manifest.json").read_text())
        assert trained["outputs"]["steps"] == budget["steps"]  # the second seed: the same steps
    probe = entries / "sft" / "budget-probe" / "manifest.json"
    first = probe.stat().st_mtime
    assert [r["steps"] for r in compare.run(recipe, tmp_path / "run")] == [r["steps"] for r in rows]
    assert probe.stat().st_mtime == first  # not probed again


def test_a_budget_in_seconds_below_one_step_is_refused_before_the_entry_trains(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [{"name": "a", "method": "sft"}], max_steps=-1)
    recipe.compare.max_seconds = 1e-6
    with pytest.raises(ConfigError, match=r"compare.max_seconds = 1e-06 is less than one optimizer step of entry 'a'"):
        compare.run(recipe, tmp_path / "run")
    assert not (tmp_path / "run" / "compare" / "entries" / "a" / "train").exists()


def test_a_token_budget_below_one_step_is_refused_before_training(tmp_path, tiny_model_dir):
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [{"name": "a", "method": "sft"}], max_steps=-1)
    recipe.compare.max_tokens = 10
    with pytest.raises(ConfigError, match="less than one optimizer step"):
        compare.run(recipe, tmp_path / "run")
    assert not (tmp_path / "run" / "compare" / "entries").exists()


def test_an_on_policy_entry_starts_from_an_added_sft_entry(tmp_path, tiny_model_dir):
    """The no-teacher control (negative-advantage) through compare: its SFT start is added, trained,
    shown as a row, and the reference stays the first entry the recipe gives (per training seed:
    ``tests/unit/test_compare_warm_start.py``; ``test_e2e_reproduce.py`` runs seeds end to end)."""
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [
        {"name": "control", "method": "negative-advantage", "objective": {"max_new_tokens": 4}},
    ], max_steps=1)
    recipe.compare.baseline = False
    rows = compare.run(recipe, tmp_path / "run")
    assert [r["objective"] for r in rows] == ["sft", "control"]
    assert rows[0]["added_as_warm_start_of"] == ["control"] and rows[1]["init"] == "sft"
    assert rows[0]["vs_reference"]["reference"] == "control" and "vs_reference" not in rows[1]
    entries = tmp_path / "run" / "compare" / "entries"
    m = json.loads((entries / "control" / "train" / "manifest.json").read_text())
    assert m["outputs"]["method"] == "negative-advantage" and m["outputs"]["on_policy_seqs"] == 4
    assert m["config"]["train"]["student"].endswith("sft/train/model")
    assert not (entries / "control" / "train" / "warm_start").exists()  # the chain is the warm start
    assert "sft: added as the SFT start of control" in compare.format_table(rows)


def test_an_entry_retrains_when_the_entry_it_starts_from_retrains(tmp_path, tiny_model_dir):
    """``init`` names the start by a path that stays the same; its weights, hashed, tell the chain
    that the entry under it retrained, so the chain is not reused stale."""
    chain = {"name": "sft+sft", "method": "sft", "init": "sft"}
    recipe = compare_recipe(tiny_model_dir, tmp_path / "cache", [{"name": "sft", "method": "sft"}, chain],
                            max_steps=1)
    recipe.compare.baseline = False
    recipe.train.warmup_ratio = 0.0  # so the one step's learning rate shows in the weights
    compare.run(recipe, tmp_path / "run")
    trained = tmp_path / "run" / "compare" / "entries" / "sft+sft" / "train" / "manifest.json"
    first = json.loads(trained.read_text())
    recipe.compare.entries = [{"name": "sft", "method": "sft", "train": {"learning_rate": 3e-3}}, chain]
    compare.run(recipe, tmp_path / "run")
    again = json.loads(trained.read_text())
    assert again["config_hash"] == first["config_hash"] and again["inputs"] != first["inputs"]
