"""REDI: the pure loss, config validation, completion-only scoring, and training on the tiny model."""

import json

import pytest
import torch

from reasondistill import models
from reasondistill.config import TrainConfig, build
from reasondistill.curate.pairs import build_pairs
from reasondistill.records import PreferenceExample
from reasondistill.errors import ConfigError
from reasondistill.io import write_jsonl
from reasondistill.records import TrainExample
from reasondistill.train import preference, redi
from reasondistill.train.losses.redi import redi_loss


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
    return preference.pair_logps(model, models.load_tokenizer(str(model_dir)), pairs)


# ---------------------------------------------------------------------------
# the loss and the config


def test_redi_loss_is_length_normalised_and_weights_the_negative_by_alpha():
    chosen, rejected = torch.tensor([-10.0, -4.0], requires_grad=True), torch.tensor([-6.0, -9.0], requires_grad=True)
    lc, lr = torch.tensor([5, 2]), torch.tensor([3, 0])  # a zero length counts as 1
    loss = redi_loss(chosen, lc, rejected, lr, alpha=0.5)
    expected = ((2.0 + 0.5 * -2.0) + (2.0 + 0.5 * -9.0)) / 2
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.all(chosen.grad < 0) and torch.all(rejected.grad > 0)  # pulls y+ up, pushes y- down
    assert redi_loss(chosen, lc, rejected, lr, alpha=0.0).item() == pytest.approx((2.0 + 2.0) / 2)


def test_alpha_out_of_range_fails_clearly_before_any_model_is_loaded(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"redi.alpha = 1.5 is out of range: it must be in \[0, 1\]"):
        redi.REDIConfig(alpha=1.5)
    with pytest.raises(ConfigError, match=r"redi.alpha = -0.1"):
        build(redi.REDIConfig, {"alpha": -0.1}, "redi")  # as a YAML recipe section would
    assert redi.REDIConfig(alpha=0).alpha == 0 and redi.REDIConfig(alpha=1.0).alpha == 1.0

    def loaded(*args, **kwargs):
        raise AssertionError("a model or tokenizer was loaded before the config was checked")

    for name in ("resolve", "load_model", "load_tokenizer"):
        monkeypatch.setattr(models, name, loaded)
    cfg = redi.REDIConfig()
    cfg.alpha = 2  # set after construction: run() checks again
    with pytest.raises(ConfigError, match=r"redi.alpha = 2 is out of range"):
        redi.run(TrainConfig(student=str(tmp_path / "student")), cfg, tmp_path / "pairs.jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_only_completion_tokens_are_scored(tiny_model_dir):
    tok = models.load_tokenizer(str(tiny_model_dir))
    pair = arithmetic_pairs(1)[0]
    feat = preference.tokenize_pair(tok, pair)
    assert tok.decode(feat["chosen_ids"]).startswith("2 + 1 = 3\nAnswer: 3<|im_end|>")
    assert tok.decode(feat["rejected_ids"]).startswith("2 times 1 is 2\nAnswer: 2<|im_end|>")
    assert tok.decode(feat["prompt_ids"]).rstrip().endswith("<|im_start|>assistant")
    batch = preference.collate([feat, feat], tok.pad_token_id, max_length=512)
    assert batch["input_ids"].shape[0] == 4  # chosen rows, then rejected rows
    for row, key in zip(range(4), ["chosen_ids", "chosen_ids", "rejected_ids", "rejected_ids"]):
        mask = batch["completion_mask"][row].bool()
        assert batch["input_ids"][row][mask].tolist() == feat[key]
    short = preference.collate([feat], tok.pad_token_id, max_length=len(feat["prompt_ids"]) + 2)
    assert short["completion_mask"].sum(-1).tolist() == [2, 2]  # long completions are cut, prompts kept


# ---------------------------------------------------------------------------
# training


def test_redi_raises_the_margin_and_saves_a_checkpoint(tmp_path, tiny_model_dir):
    pairs = arithmetic_pairs()
    # the pairs go through the real pair builder, from curate-style files
    write_jsonl(tmp_path / "train.jsonl", [TrainExample(p.prompt, p.chosen, {"problem_id": p.meta["problem_id"],
                                           "trace_id": p.meta["chosen_trace_id"]}) for p in pairs])
    write_jsonl(tmp_path / "negatives.jsonl", [TrainExample(p.prompt, p.rejected, {"problem_id": p.meta["problem_id"],
                                               "trace_id": p.meta["rejected_trace_id"]}) for p in pairs])
    counts = build_pairs(tmp_path / "train.jsonl", tmp_path / "negatives.jsonl", tmp_path / "pairs.jsonl")
    assert counts["pairs"] == len(pairs)

    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=4, batch_size=2, learning_rate=5e-3,
                      warmup_ratio=0.0, logging_steps=2, dtype="float32", device="cpu")
    before = margin(tiny_model_dir, pairs)
    m = redi.run(cfg, redi.REDIConfig(alpha=0.8), tmp_path / "pairs.jsonl", tmp_path / "out")
    after = margin(tmp_path / "out" / "model", pairs)
    print(f"REDI margin {before['margin']:.3f} -> {after['margin']:.3f}; "
          f"chosen {before['chosen']:.3f} -> {after['chosen']:.3f}")
    assert after["margin"] > before["margin"] + 0.2
    assert after["chosen"] > before["chosen"]  # the SFT half still pulls the correct traces up

    assert m["outputs"]["method"] == "redi" and m["outputs"]["steps"] == 4 and m["outputs"]["n_pairs"] == 4
    assert m["config"]["redi"] == {"alpha": 0.8}
    model_dir = tmp_path / "out" / "model"
    assert (model_dir / "model.safetensors").exists() and not (tmp_path / "out" / "trainer").exists()
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 2 and {"loss", "logps/chosen", "logps/rejected", "logps/margin"} <= set(log[0])
    assert log[-1]["logps/margin"] > log[0]["logps/margin"]
    # same config and data: reused, checkpoint untouched
    mtime = (model_dir / "model.safetensors").stat().st_mtime_ns
    redi.run(cfg, redi.REDIConfig(alpha=0.8), tmp_path / "pairs.jsonl", tmp_path / "out")
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_redi_with_lora_merges_into_a_plain_checkpoint(tmp_path, tiny_model_dir):
    write_jsonl(tmp_path / "pairs.jsonl", arithmetic_pairs(2))
    cfg = TrainConfig(student=str(tiny_model_dir), lora=True, lora_r=4, max_steps=1, batch_size=2, warmup_ratio=0.0,
                      learning_rate=1e-2, dtype="float32", device="cpu")
    redi.run(cfg, redi.REDIConfig(), tmp_path / "pairs.jsonl", tmp_path / "lora")
    model_dir = tmp_path / "lora" / "model"
    assert (model_dir / "model.safetensors").exists() and not (model_dir / "adapter_config.json").exists()
    merged = models.load_model(str(model_dir), dtype="float32", device="cpu")
    base = models.load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    assert sum((a - b).abs().sum().item() for a, b in zip(merged.parameters(), base.parameters())) > 0
