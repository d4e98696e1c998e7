"""DPO and SimPO through TRL on the tiny model: configs, and the chosen-rejected margin rises."""

import pytest

from reasondistill import models
from reasondistill.config import TrainConfig
from reasondistill.records import PreferenceExample
from reasondistill.errors import ConfigError
from reasondistill.io import write_jsonl
from reasondistill.train import dpo, preference, simpo


def arithmetic_pairs(n=4):
    out = []
    for i in range(n):
        a, b = i % 5 + 2, (3 * i) % 7 + 1
        out.append(PreferenceExample(
            prompt=[{"role": "user", "content": f"What is {a} + {b}?"}],
            chosen=[{"role": "assistant", "content": f"{a} + {b} = {a + b}\nAnswer: {a + b}"}],
            rejected=[{"role": "assistant", "content": f"{a} times {b} is {a * b}\nAnswer: {a * b}"}],
            meta={"problem_id": f"p{i}", "chosen_trace_id": f"c{i}", "rejected_trace_id": f"r{i}"}))
    return out


def margin(model_dir, pairs):
    model = models.load_model(str(model_dir), dtype="float32", device="cpu")
    return preference.pair_logps(model, models.load_tokenizer(str(model_dir)), pairs)["margin"]


@pytest.fixture()
def pairs_path(tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", arithmetic_pairs())
    return tmp_path / "pairs.jsonl"


def test_configs_validate():
    with pytest.raises(ConfigError, match="dpo.beta = 0 must be > 0"):
        dpo.DPOObjectiveConfig(beta=0)
    with pytest.raises(ConfigError, match="dpo.loss_type = 'simpo' is not one of: sigmoid, hinge"):
        dpo.DPOObjectiveConfig(loss_type="simpo")
    with pytest.raises(ConfigError, match="simpo.gamma = -1 must be >= 0"):
        simpo.SimPOConfig(gamma=-1)
    with pytest.raises(ConfigError, match="simpo.beta"):
        simpo.SimPOConfig(beta=-2.0)


@pytest.mark.parametrize("method", ["dpo", "simpo"])
def test_margin_rises(method, tmp_path, pairs_path, tiny_model_dir):
    pairs = arithmetic_pairs()
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=3, batch_size=2, learning_rate=5e-3,
                      warmup_ratio=0.0, logging_steps=1, dtype="float32", device="cpu")
    before = margin(tiny_model_dir, pairs)
    if method == "dpo":
        m = dpo.run(cfg, dpo.DPOObjectiveConfig(beta=0.1), pairs_path, tmp_path / "out")
    else:
        m = simpo.run(cfg, simpo.SimPOConfig(beta=2.0, gamma=1.0), pairs_path, tmp_path / "out")
    after = margin(tmp_path / "out" / "model", pairs)
    print(f"{method} margin {before:.3f} -> {after:.3f}")
    assert after > before + 0.2
    out = m["outputs"]
    assert out["method"] == method and out["steps"] == 3 and out["first_loss"] is not None
    if method == "dpo":  # TRL's DPOTrainer counts both rows of every pair, without padding
        assert 0 < out["tokens_trained"] <= 3 * 2 * 2 * cfg.max_length
    else:  # SimPO's CPOTrainer counts nothing: the cost column says n/a rather than a guess
        assert "tokens_trained" not in out
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    assert (tmp_path / "out" / "loss.jsonl").exists() and not (tmp_path / "out" / "trainer").exists()
