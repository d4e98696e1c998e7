"""reasoning-gym source: seeded, disjoint splits, any task and its knobs, verifier-ready meta."""

import json

import pytest
import reasoning_gym

from reasondistill.config import ProblemsConfig
from reasondistill.errors import ConfigError
from reasondistill.problems import reasoning_gym as rg
from reasondistill.tasks import original_entry
from reasondistill.problems.base import normalize_prompt


def cfg(**kw):
    kw.setdefault("n_train", 30)
    kw.setdefault("n_eval", 20)
    return ProblemsConfig(source="reasoning_gym", **kw)


def prompts(problems):
    return [p.prompt for p in problems]


def test_deterministic_per_seed_and_disjoint():
    a, b, c = rg.load(cfg(seed=3)), rg.load(cfg(seed=3)), rg.load(cfg(seed=4))
    assert (len(a.train), len(a.eval)) == (30, 20)
    assert prompts(a.train) == prompts(b.train) and prompts(a.eval) == prompts(b.eval)
    assert prompts(a.eval) != prompts(c.eval)
    assert not {normalize_prompt(p) for p in prompts(a.train)} & {normalize_prompt(p) for p in prompts(a.eval)}
    assert len({p.id for p in a.train + a.eval}) == 50


def test_small_space_still_disjoint_and_counts_repeats():
    # one-digit, two-term sums: only a few hundred distinct prompts, so repeats must be dropped
    loaded = rg.load(cfg(task_config={"min_terms": 2, "max_terms": 2, "max_digits": 1}, n_train=60, n_eval=40))
    ev = {normalize_prompt(p) for p in prompts(loaded.eval)}
    tr = [normalize_prompt(p) for p in prompts(loaded.train)]
    assert len(ev) == 40 and len(set(tr)) == len(tr) == 60 and not ev & set(tr)
    assert sum(loaded.skipped.values()) > 0


def test_too_few_distinct_prompts_is_a_config_error():
    with pytest.raises(ConfigError, match="distinct prompts"):
        rg.load(cfg(task_config={"min_terms": 2, "max_terms": 2, "max_digits": 1}, n_train=5000, n_eval=0))


def test_record_shape_and_meta_for_verifier():
    p = rg.load(cfg(n_train=1, n_eval=1)).eval[0]
    assert p.id == "chain_sum-0" and p.source == "reasoning_gym:chain_sum"
    meta = json.loads(json.dumps(p.meta))  # what later stages read back from JSONL
    assert meta["task"] == "chain_sum" and meta["task_config"] == {}
    entry = meta["rg_entry"]
    assert entry["question"] == p.prompt and str(entry["answer"]) == p.answer
    assert "expression" in entry["metadata"]
    assert entry["metadata"]["difficulty"]["num_terms"] == [2, 6]  # tuples became lists
    score = reasoning_gym.get_score_answer_fn("chain_sum")
    assert score(p.answer, entry) == 1.0 and score("nope", entry) == 0.0


def test_original_entry_restores_tuples():
    ds = reasoning_gym.create_dataset("rearc", seed=0, size=2)
    p = rg.to_problem("rearc", 1, ds[1], cfg(task="rearc"), 2)
    meta = json.loads(json.dumps(p.meta))
    score = reasoning_gym.get_score_answer_fn("rearc")
    assert score(p.answer, meta["rg_entry"]) < 1.0  # JSON lists != tuples in rearc's scorer
    assert score(p.answer, original_entry(meta)) == 1.0


def test_task_knobs_are_applied():
    loaded = rg.load(cfg(task_config={"min_terms": 5, "max_terms": 5}, n_train=10, n_eval=5))
    assert {p.meta["rg_entry"]["metadata"]["num_terms"] for p in loaded.train + loaded.eval} == {5}
    assert loaded.train[0].meta["task_config"] == {"min_terms": 5, "max_terms": 5}


def test_any_task_works():
    loaded = rg.load(cfg(task="basic_arithmetic", n_train=5, n_eval=3))
    assert loaded.train[0].source == "reasoning_gym:basic_arithmetic"
    assert loaded.eval[0].id.startswith("basic_arithmetic-")


def test_unknown_task_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean: chain_sum"):
        rg.load(cfg(task="chain_summ"))


@pytest.mark.parametrize("task_config, match", [
    ({"min_term": 3}, "unknown key.*min_term.*valid keys: .*min_terms"),
    ({"seed": 1}, "use problems.seed"),
    ({"min_terms": 9, "max_terms": 2}, "invalid"),
])
def test_bad_task_config(task_config, match):
    with pytest.raises(ConfigError, match=match):
        rg.load(cfg(task_config=task_config))


def test_n_train_none_is_rejected():
    with pytest.raises(ConfigError, match="n_train"):
        rg.load(cfg(n_train=None))


def test_neighbouring_seeds_draw_disjoint_problems():
    # reasoning-gym seeds item i with seed + i: passed through as-is, seed 1 repeated 19 of seed 0's
    # 20 eval prompts (shifted by one), so a "validation" seed scored the held-out set
    zero, one = rg.load(cfg(seed=0)), rg.load(cfg(seed=1))
    seen = {normalize_prompt(p) for p in prompts(zero.train + zero.eval)}
    assert not seen & {normalize_prompt(p) for p in prompts(one.train + one.eval)}
    # seed 0 keeps reasoning-gym's own items, so earlier seed-0 runs keep their problems
    direct = reasoning_gym.create_dataset("chain_sum", seed=0, size=5)
    assert prompts(zero.eval)[:3] == [direct[i]["question"] for i in range(3)]
    # the verifier regenerates a seed-1 entry from its meta
    p = one.eval[0]
    assert p.meta["rg_seed"] == rg.dataset_seed(1) != 1
    assert original_entry(json.loads(json.dumps(p.meta)))["question"] == p.prompt


def test_more_problems_than_one_seed_holds_is_refused():
    with pytest.raises(ConfigError, match="too many for one reasoning-gym seed"):
        rg.load(cfg(n_train=rg.SEED_STRIDE, n_eval=0))
