import json
import statistics

import pytest
import torch
from rl_tiny_models import half_vocab_teacher, one_thread, small_tokenizer, tiny_llama  # noqa: F401

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.train import kdrl
from reasondistill.train.grpo import GRPOObjectiveConfig
from reasondistill.train.kdrl import KDRLConfig
from reasondistill.train.rewards import RewardConfig


@pytest.fixture(scope="module")
def small_dirs(tmp_path_factory):
    """A random student over a small vocabulary and a teacher that puts nearly all its mass on the lower
    half of that vocabulary, with 16 padded output rows (see rl_tiny_models)."""
    tok = small_tokenizer()
    student = tiny_llama(tmp_path_factory.mktemp("small-student"), tok)
    teacher = half_vocab_teacher(tmp_path_factory.mktemp("half-vocab-teacher"), tok, extra_rows=16)
    return student, teacher, len(tok)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def problems_path(tmp_path):
    path = tmp_path / "problems.jsonl"
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"{i} + 2 =", str(i + 2)) for i in range(4)])
    return path


def test_kdrl_pulls_the_student_towards_the_teacher(tmp_path, small_dirs, problems_path):
    student, teacher, n_vocab = small_dirs
    cfg = TrainConfig(student=str(student), max_steps=12, batch_size=16, learning_rate=5e-2,
                      logging_steps=1, warmup_ratio=0.0, dtype="float32", device="cpu")
    kcfg = KDRLConfig(teacher=str(teacher), kl_weight=1.0,
                      grpo=GRPOObjectiveConfig(num_generations=8, max_completion_length=8,  # cheap reward:
                                               rewards=RewardConfig(correctness_weight=0.0, format_weight=1.0)))
    m = kdrl.run(cfg, kcfg, problems_path, tmp_path / "out")
    out = m["outputs"]
    assert out["method"] == "kdrl" and out["steps"] == 12 and out["kl_weight"] == 1.0
    pre = out["preflight"]
    assert (pre["student_rows"], pre["teacher_rows"], pre["shared_vocab"]) == (n_vocab, n_vocab + 16, n_vocab)
    assert any(f"truncated to the shared vocab size {n_vocab}" in n for n in pre["notes"])
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert all("reward" in h for h in log)
    # the per-token KL(student || teacher) estimated on the student's samples: medians, since a rare
    # sampled token the teacher all but forbids makes a single step's estimate spike
    kls = [h["kl"] for h in log]
    first, last = statistics.median(kls[:3]), statistics.median(kls[-4:])
    assert first > 3 and last < 0.3 * first, kls
    assert out["first_kl"] == kls[0] and out["last_kl"] == kls[-1]
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    # the student now samples (almost only) from the half of the vocabulary the teacher allows
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "out" / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    ids = tok.apply_chat_template([{"role": "user", "content": "1 + 2 ="}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    torch.manual_seed(0)
    sample = model.generate(ids, do_sample=True, max_new_tokens=32, min_new_tokens=32)[0, ids.shape[1]:]
    assert (sample < n_vocab // 2).float().mean() > 0.8


def test_truncated_teacher_head_gives_the_shared_rows_logits(small_dirs):
    from transformers import AutoModelForCausalLM

    _, teacher, n_vocab = small_dirs
    model = AutoModelForCausalLM.from_pretrained(teacher).eval()
    ids = torch.tensor([[1, 20, 30, 40]])
    with torch.no_grad():
        full = model(ids).logits
        kdrl.fit_output_rows(model, n_vocab)
        cut = model(ids).logits
    assert full.shape[-1] == n_vocab + 16
    assert cut.shape[-1] == n_vocab and torch.allclose(cut, full[..., :n_vocab])
    with pytest.raises(ConfigError, match="cannot widen"):
        kdrl.fit_output_rows(model, n_vocab + 100)


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


def test_kdrl_with_a_served_teacher_config_matches_the_in_process_teacher(tmp_path, problems_path):
    """The same teacher as a model name and as a transformers teacher config (log-probs through
    ``Backend.score``): the same samples (same seed) get the same KL to it on the first step."""
    tok = small_tokenizer()
    student = tiny_llama(tmp_path / "student", tok)
    teacher = half_vocab_teacher(tmp_path / "teacher", tok, extra_rows=0)
    cfg = TrainConfig(student=str(student), max_steps=1, batch_size=8, learning_rate=1e-2, logging_steps=1,
                      warmup_ratio=0.0, dtype="float32", device="cpu")
    grpo_cfg = GRPOObjectiveConfig(num_generations=4, max_completion_length=6,
                                   rewards=RewardConfig(correctness_weight=0.0, format_weight=1.0))
    named = kdrl.run(cfg, KDRLConfig(teacher=str(teacher), kl_weight=1.0, grpo=grpo_cfg), problems_path,
                     tmp_path / "named")["outputs"]
    config = {"backend": "transformers", "model": str(teacher), "dtype": "float32", "device": "cpu"}
    served = kdrl.run(cfg, KDRLConfig(teacher=config, kl_weight=1.0, grpo=grpo_cfg), problems_path,
                      tmp_path / "served")["outputs"]
    assert served["teacher_selftest"]["passed"] and served["teacher"].startswith("transformers:")
    assert named["first_kl"] > 1 and served["first_kl"] == pytest.approx(named["first_kl"], rel=5e-3)
