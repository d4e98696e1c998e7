import json

import pytest

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.train import grpo
from reasondistill.train.grpo import GRPOObjectiveConfig
from reasondistill.train.rewards import RewardConfig


def problems(n=4):
    return [Problem(f"p{i}", "t", f"{i} + 1 =", str(i + 1)) for i in range(n)]


def lower_half_vocab(prompts, completions, completion_ids, **kwargs):
    """An easy reward with spread from the first step: the share of completion tokens with id < 24576."""
    return [sum(t < 24576 for t in ids) / max(1, len(ids)) for ids in completion_ids]


def tiny_cfg(model_dir, **kw):
    base = dict(student=str(model_dir), batch_size=8, learning_rate=2e-2, logging_steps=1, warmup_ratio=0.0,
                dtype="float32", device="cpu")
    return TrainConfig(**{**base, **kw})


def test_grpo_raises_mean_reward_on_an_easy_reward(tmp_path, tiny_model_dir):
    cfg = tiny_cfg(tiny_model_dir, max_steps=12)
    gcfg = GRPOObjectiveConfig(num_generations=4, max_completion_length=8)
    _, _, result, history, info = grpo.train(cfg, gcfg, problems(), tmp_path, reward_funcs=[lower_half_vocab])
    rewards = [h["reward"] for h in history]
    assert result.global_step == 12 and len(rewards) == 12
    assert "rewards/lower_half_vocab/mean" in history[0]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.15, rewards
    assert info["rewards"] == ["lower_half_vocab"]


def test_grpo_run_saves_checkpoint_loss_log_and_manifest(tmp_path, tiny_model_dir):
    path = tmp_path / "problems.jsonl"
    io.write_jsonl(path, problems())
    cfg = tiny_cfg(tiny_model_dir, max_steps=2)
    gcfg = GRPOObjectiveConfig(num_generations=4, max_completion_length=6,
                               rewards=RewardConfig(format_weight=0.5, length_weight=0.1, budget_tokens=4))
    m = grpo.run(cfg, gcfg, path, tmp_path / "out")
    out = m["outputs"]
    assert out["method"] == "grpo" and out["steps"] == 2 and out["n_problems"] == 4
    assert out["rewards"] == ["correctness", "answer_format", "length_penalty"]
    assert out["reward_weights"] == [1.0, 0.5, 0.1]
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all("reward" in h and "rewards/correctness/mean" in h for h in log)
    # 6 sampled tokens over a 4-token budget: every completion is penalised -0.5
    assert log[0]["rewards/length_penalty/mean"] == pytest.approx(-0.5)
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
