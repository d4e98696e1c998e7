"""``compare``: an on-policy entry without ``init`` starts from an SFT entry on the same data (its
``train.warm_start: sft`` default): the compare's own, else one it adds. Config only, nothing trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reasondistill import compare
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError
from reasondistill.layout import Layout

GKD = {"name": "gkd", "method": "gkd", "objective": {"teacher": "some-teacher"}}


def plan(*entries, train=None, **compare_cfg):
    recipe = build(Recipe, {"compare": {"entries": list(entries), **compare_cfg}, "train": train or {}})
    return recipe, {e.name: e for e in compare.entries(recipe)}, [e.name for e in compare.entries(recipe)]


def test_an_on_policy_entry_reuses_the_compares_sft_entry_on_the_same_data():
    _, by_name, order = plan({"name": "sft", "method": "sft", "train": {"learning_rate": 1e-4}}, GKD,
                             {"name": "kd", "method": "kd"})
    assert order == ["sft", "gkd", "kd"] and by_name["gkd"].init == "sft"
    assert by_name["kd"].init is None  # offline KD is not on-policy: no warm start (its control is the sft row)


def test_without_one_an_sft_entry_is_added_before_it_and_shared_by_every_on_policy_entry():
    recipe, by_name, order = plan(GKD, {"name": "grpo", "method": "grpo", "train": {"max_steps": 6}},
                                  {"name": "control", "method": "negative-advantage"}, max_steps=4)
    assert order == ["sft", "gkd", "grpo", "control"]
    added = by_name["sft"]
    assert (added.method, added.init, added.curate, added.train) == ("sft", None, {}, {})
    assert {by_name[n].init for n in ("gkd", "grpo", "control")} == {"sft"}
    assert compare.added_entries(recipe, list(by_name.values())) == {"sft": ["gkd", "grpo", "control"]}
    layout = Layout(Path("run"))
    sft_cfg = compare.train_cfg(recipe, added, layout)
    assert sft_cfg.max_steps == compare.train_cfg(recipe, by_name["gkd"], layout).max_steps == 4  # the same budget
    for seed in (0, 1):  # each training seed starts from the SFT entry's checkpoint of that seed
        cfg = compare.train_cfg(recipe, by_name["control"], layout, seed)
        assert cfg.student == str(layout.entry("sft", seed).checkpoint)
        assert cfg.warm_start == "none"  # the chain is the warm start: the train stage adds no SFT pass of its own


def test_sft_on_other_data_is_not_reused_and_the_added_entry_takes_the_on_policy_entrys_data():
    _, by_name, order = plan({"name": "sft", "method": "sft", "curate": {"max_per_problem": 1}},
                             {**GKD, "curate": {"max_per_problem": 2}})
    assert order == ["sft", "sft-for-gkd", "gkd"] and by_name["gkd"].init == "sft-for-gkd"
    assert by_name["sft-for-gkd"].curate == {"max_per_problem": 2}


def test_an_entrys_own_budget_carries_over_to_the_sft_it_starts_from():
    _, by_name, _ = plan({**GKD, "train": {"max_steps": 7, "learning_rate": 1e-5}})
    assert by_name["sft"].train == {"max_steps": 7}  # the budget; the learning rate stays SFT's own


def test_explicit_init_and_warm_start_none_are_honoured():
    _, by_name, order = plan({"name": "base", "method": "sft"}, {**GKD, "init": "base"},
                             {"name": "cold", "method": "grpo", "train": {"warm_start": "none"}})
    assert order == ["base", "gkd", "cold"]
    assert by_name["gkd"].init == "base" and by_name["cold"].init is None
    _, by_name, order = plan({"name": "cold", "method": "negative-advantage"}, train={"warm_start": "none"})
    assert order == ["cold"] and by_name["cold"].init is None


def test_a_matching_sft_entry_listed_later_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=re.escape("compare.entries[0] (gkd) starts from SFT on the same data "
                                                    "(train.warm_start: sft, the default for gkd); list entry 'sft' "
                                                    "before it")):
        plan(GKD, {"name": "sft", "method": "sft"})


def test_the_table_marks_an_added_entry():
    row = {"objective": "sft", "seeds": 1, "accuracy": 0.5, "ci95": [0.4, 0.6], "tokens_per_answer": 10.0,
           "peak_rss_mb": 100.0, "added_as_warm_start_of": ["gkd"]}
    table = compare.format_table([row, {**row, "objective": "gkd", "added_as_warm_start_of": None}])
    assert "sft: added as the SFT start of gkd (train.warm_start: sft" in table
