import json

import pytest
from rl_tiny_models import one_thread, small_tokenizer, tiny_llama  # noqa: F401

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.train import grpo
from reasondistill.train.grpo import GRPOObjectiveConfig
from reasondistill.train.rewards import RewardConfig


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    tok = small_tokenizer()
    return tiny_llama(tmp_path_factory.mktemp("small-student"), tok)


pytestmark = pytest.mark.usefixtures("one_thread")


def problems(n=4):
    return [Problem(f"p{i}", "t", f"{i} + 1 =", str(i + 1)) for i in range(n)]


def tiny_cfg(model_dir, **kw):
    base = dict(student=str(model_dir), batch_size=8, learning_rate=5e-2, logging_steps=1, warmup_ratio=0.0,
                dtype="float32", device="cpu")
    return TrainConfig(**{**base, **kw})


def test_grpo_raises_mean_reward_on_an_easy_reward(tmp_path, student_dir):
    from transformers import AutoTokenizer

    n_vocab = len(AutoTokenizer.from_pretrained(student_dir))

    def lower_half_vocab(prompts, completions, completion_ids, **kwargs):
        """Easy, with spread from the first step: the share of completion tokens in the lower half of the vocab."""
        return [sum(t < n_vocab // 2 for t in ids) / max(1, len(ids)) for ids in completion_ids]

    cfg = tiny_cfg(student_dir, max_steps=12)
    gcfg = GRPOObjectiveConfig(num_generations=4, max_completion_length=8)
    _, _, result, history, info = grpo.train(cfg, gcfg, problems(), tmp_path, reward_funcs=[lower_half_vocab])
    rewards = [h["reward"] for h in history]
    assert result.global_step == 12 and len(rewards) == 12
    assert "rewards/lower_half_vocab/mean" in history[0]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert first < 0.6 and last > 0.75, rewards  # starts at chance (0.5)
    assert info["rewards"] == ["lower_half_vocab"] and info["preflight"]["ok"]


def test_grpo_run_saves_checkpoint_loss_log_and_manifest(tmp_path, student_dir):
    path = tmp_path / "problems.jsonl"
    io.write_jsonl(path, problems())
    cfg = tiny_cfg(student_dir, max_steps=2)
    gcfg = GRPOObjectiveConfig(num_generations=4, max_completion_length=6,
                               rewards=RewardConfig(format_weight=0.5, length_weight=0.1, budget_tokens=4))
    m = grpo.run(cfg, gcfg, path, tmp_path / "out")
    out = m["outputs"]
    assert out["method"] == "grpo" and out["steps"] == 2 and out["n_problems"] == 4
    assert out["tokens_trained"] > 2 * 4 * 6  # prompts and completions of 2 steps of 4 generations, counted by TRL
    assert out["rewards"] == ["correctness", "answer_format", "length_penalty"]
    assert out["reward_weights"] == [1.0, 0.5, 0.1]
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all("reward" in h and "rewards/correctness/mean" in h for h in log)
    assert out["first_reward"] == log[0]["reward"] and out["last_reward"] == log[1]["reward"]
    # completions that run to 6 tokens over a 4-token budget get -0.5; one that stops early gets less
    assert -0.5 <= log[0]["rewards/length_penalty/mean"] < 0
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "trainer").exists()
    again = grpo.run(cfg, gcfg, path, tmp_path / "out")  # finished: skipped
    assert again["started_at"] == m["started_at"]


@pytest.mark.parametrize("kwargs, match", [
    ({"num_generations": 1}, "num_generations must be >= 2"),
    ({"loss_type": "ppo"}, "loss_type"),
    ({"temperature": 0.0}, "temperature"),
    ({"rewards": {"correctness_weight": 0.0, "format_weight": 0.0}}, "every reward weight is 0"),
])
def test_bad_grpo_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GRPOObjectiveConfig(**kwargs)


def test_group_arithmetic_fails_before_any_model_is_loaded(tmp_path, monkeypatch):
    def no_loading(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_model", no_loading)
    monkeypatch.setattr(models, "resolve", no_loading)
    cfg = TrainConfig(student="/nonexistent", batch_size=6, max_steps=1)
    with pytest.raises(ConfigError, match=r"6 completions per step is not a multiple of grpo.num_generations = 4"):
        grpo.run(cfg, GRPOObjectiveConfig(num_generations=4), tmp_path / "missing.jsonl", tmp_path / "out")


def test_objective_options_build_from_the_recipe_table():
    cfg = TrainConfig(method="kdrl", objective={"teacher": "t", "kl_weight": 0.2,
                                                "grpo": {"num_generations": 4, "rewards": {"length_weight": 0.3}}})
    from reasondistill.train import objective_config

    k = objective_config(cfg.method, cfg.objective)
    assert k.grpo.num_generations == 4 and k.grpo.rewards.length_weight == 0.3 and k.kl_weight == 0.2
    with pytest.raises(ConfigError, match="num_generations must be >= 2"):
        objective_config("grpo", {"num_generations": 1})
    with pytest.raises(ConfigError, match="unknown recipe key 'train.objective.rewards.budget'"):
        objective_config("grpo", {"rewards": {"budget": 10}})
