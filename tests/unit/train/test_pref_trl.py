"""DPO (ours and TRL's) and SimPO (TRL's) on the tiny model: configs, the chosen-rejected margin rises,
and our DPO trains what TRL's does."""

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
    with pytest.raises(ConfigError, match="simpo.engine = 'auto' is not one of: own, trl"):
        simpo.SimPOConfig(engine="auto")


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
    # our DPO and SimPO trainers count both rows of every pair, without padding
    assert 0 < out["tokens_trained"] <= 3 * 2 * 2 * cfg.max_length
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    assert (tmp_path / "out" / "loss.jsonl").exists() and not (tmp_path / "out" / "trainer").exists()


@pytest.mark.parametrize("method", ["dpo", "simpo"])
def test_own_trainer_trains_the_weights_trls_trainer_trains(method, tmp_path, pairs_path, tiny_model_dir):
    """Our DPO (reference scored once, before the first step) and TRL's DPOTrainer (a frozen copy
    scored every step) are one objective: from the same start, three steps give the same weights.
    Our SimPO and TRL's CPOTrainer (loss_type simpo) compute one loss on slightly different tokens:
    CPOTrainer adds a BOS token to the prompt and an EOS token after the chat template's end of turn,
    which the student never sees elsewhere, so their mean log-probabilities, and the losses, differ a
    little (ours tokenises as DPOTrainer, SFT and evaluation do)."""
    from safetensors.torch import load_file

    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=3, batch_size=2, learning_rate=5e-3,
                      warmup_ratio=0.0, logging_steps=1, dtype="float32", device="cpu")
    out = {}
    for engine in ("own", "trl"):
        if method == "dpo":
            m = dpo.run(cfg, dpo.DPOObjectiveConfig(beta=0.1, engine=engine), pairs_path, tmp_path / engine)
        else:
            m = simpo.run(cfg, simpo.SimPOConfig(beta=2.0, gamma=1.0, engine=engine), pairs_path, tmp_path / engine)
        out[engine] = (load_file(tmp_path / engine / "model" / "model.safetensors"), m["outputs"])
    (own, own_out), (trl, trl_out) = out["own"], out["trl"]
    start = load_file(tiny_model_dir / "model.safetensors")
    moved = max(float((own[k] - start[k]).abs().max()) for k in own)
    assert moved > 1e-3  # three steps at this rate move the weights
    if method == "dpo":
        for k in own:
            # Adam turns float noise in tiny gradients into steps of ~lr, so equal means 1% of the movement
            assert float((own[k] - trl[k]).abs().max()) < 0.01 * moved, k
        assert abs(own_out["first_loss"] - trl_out["first_loss"]) < 1e-5
    else:  # one token more per completion in CPOTrainer's mean: within 1% here, and both fall
        assert abs(own_out["first_loss"] - trl_out["first_loss"]) < 0.01 * trl_out["first_loss"]
        assert own_out["last_loss"] < own_out["first_loss"] and trl_out["last_loss"] < trl_out["first_loss"]
    trl_name = "trl.DPOTrainer" if method == "dpo" else "trl.CPOTrainer"
    own_name = "reasondistill.DPOTrainer" if method == "dpo" else "reasondistill.SimPOTrainer"
    assert (own_out["trainer"], trl_out["trainer"]) == (own_name, trl_name)
    if method == "dpo":  # both count both rows of every pair, no padding
        assert own_out["tokens_trained"] == trl_out["tokens_trained"]
        assert own_out["reference_seconds"] >= 0 and "reference_seconds" not in trl_out
    else:  # CPOTrainer counts no tokens; ours counts what DPO's counts
        assert own_out["tokens_trained"] > 0 and "tokens_trained" not in trl_out


def test_own_dpo_engine_takes_the_sigmoid_loss_only():
    assert dpo.DPOObjectiveConfig().own and not dpo.DPOObjectiveConfig(loss_type="ipo").own
    assert not dpo.DPOObjectiveConfig(engine="trl").own
    with pytest.raises(ConfigError, match="dpo.engine = own computes loss_type sigmoid only"):
        dpo.DPOObjectiveConfig(engine="own", loss_type="ipo")
    with pytest.raises(ConfigError, match="dpo.engine = 'fast' is not one of: auto, own, trl"):
        dpo.DPOObjectiveConfig(engine="fast")
