import json

import pytest
import torch

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.train import kdrl
from reasondistill.train.grpo import GRPOObjectiveConfig
from reasondistill.train.kdrl import KDRLConfig
from reasondistill.train.rewards import RewardConfig


def tiny_llama(out, tok, *, extra_rows=0, init_range=0.02, seed=1, weights=True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok) + extra_rows, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, initializer_range=init_range, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if weights:
        LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    else:
        cfg.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tmp_path_factory):
    """A different random model with the student's tokenizer, a sharper distribution and 64 padded rows."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return tiny_llama(tmp_path_factory.mktemp("teacher"), tok, extra_rows=64, init_range=0.3)


@pytest.fixture()
def problems_path(tmp_path):
    path = tmp_path / "problems.jsonl"
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"{i} + 2 =", str(i + 2)) for i in range(4)])
    return path


def test_kdrl_pulls_the_student_towards_the_teacher(tmp_path, tiny_model_dir, teacher_dir, problems_path):
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=10, batch_size=8, learning_rate=2e-2,
                      logging_steps=1, warmup_ratio=0.0, dtype="float32", device="cpu")
    kcfg = KDRLConfig(teacher=str(teacher_dir), kl_weight=1.0,
                      grpo=GRPOObjectiveConfig(num_generations=4, max_completion_length=8,
                                               rewards=RewardConfig(format_weight=1.0)))
    m = kdrl.run(cfg, kcfg, problems_path, tmp_path / "out")
    out = m["outputs"]
    assert out["method"] == "kdrl" and out["steps"] == 10
    assert out["preflight"]["shared_vocab"] == 49152 and out["preflight"]["teacher_rows"] == 49152 + 64
    assert any("truncated to the shared vocab size 49152" in n for n in out["preflight"]["notes"])
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    kls = [h["kl"] for h in log]
    assert all("reward" in h for h in log)
    first, last = sum(kls[:3]) / 3, sum(kls[-3:]) / 3
    assert last < 0.7 * first, kls
    assert out["first_kl"] == kls[0] and out["last_kl"] == kls[-1]
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()


def test_truncated_teacher_head_gives_the_shared_rows_logits(teacher_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    ids = torch.tensor([[1, 200, 300, 400]])
    with torch.no_grad():
        full = model(ids).logits
        kdrl.fit_output_rows(model, 49152)
        cut = model(ids).logits
    assert cut.shape[-1] == 49152 and torch.allclose(cut, full[..., :49152])
    with pytest.raises(ConfigError, match="cannot widen"):
        kdrl.fit_output_rows(model, 50000)


def test_teacher_with_another_vocabulary_fails_before_weights_load(tmp_path, tiny_model_dir, problems_path,
                                                                   monkeypatch):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_tokens(["<extra_token>"])
    other = tiny_llama(tmp_path / "other", tok, weights=False)  # config and tokenizer only

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_model", no_loading)
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=1, batch_size=4)
    kcfg = KDRLConfig(teacher=str(other), grpo=GRPOObjectiveConfig(num_generations=4))
    with pytest.raises(ConfigError, match="sequence-level distillation"):
        kdrl.run(cfg, kcfg, problems_path, tmp_path / "out")


@pytest.mark.parametrize("kwargs, match", [
    ({"kl_weight": -0.1}, "kl_weight"),
    ({"grpo": {"beta": 0.04}}, "grpo.beta must be 0"),
    ({"teacher_dtype": "int8"}, "teacher_dtype"),
])
def test_bad_kdrl_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        KDRLConfig(teacher="t", **kwargs)


def test_missing_teacher_fails_in_run_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "resolve", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    with pytest.raises(ConfigError, match="kdrl.teacher is required"):
        kdrl.run(TrainConfig(batch_size=8), KDRLConfig(), tmp_path / "p.jsonl", tmp_path / "out")
