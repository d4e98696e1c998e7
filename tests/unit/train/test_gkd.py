"""On-policy distillation (GKD): a tiny random student, a tiny random teacher with the same tokenizer."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import OBJECTIVES, Objective, base, gkd, objective_config, run_objective
from reasondistill.train.gkd_config import GKDObjectiveConfig

GKD_ROW = Objective("reasondistill.train.gkd_config:GKDObjectiveConfig", "reasondistill.train.gkd:run", "curated")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tiny models are latency-bound, and on 2 shared cores a second
    spinning thread makes every small op wait on the scheduler (about 4x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_llama(out, tok, *, extra_rows=0, init_range=0.02, seed=1, weights=True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok) + extra_rows, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, initializer_range=init_range, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out.mkdir(parents=True, exist_ok=True)
    if weights:
        LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    else:
        cfg.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def padded_student(out, tok, extra_rows=32):
    """A tiny random student with ``extra_rows`` padded output rows, made so large that it would
    sample them almost always if nothing kept it from doing so."""
    from transformers import LlamaForCausalLM

    tiny_llama(out, tok, extra_rows=extra_rows, seed=3)
    model = LlamaForCausalLM.from_pretrained(out)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tok):].normal_(0.0, 5.0, generator=torch.Generator().manual_seed(0))
    model.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return models.load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tok, tmp_path_factory):
    """Another random tiny Llama with the student's tokenizer: sharper, and with 64 padded output rows."""
    return tiny_llama(tmp_path_factory.mktemp("gkd-teacher"), tok, extra_rows=64, init_range=0.3)


def examples(answer_offset=0):
    return [TrainExample(prompt=[{"role": "user", "content": f"What is {i} + {i % 3}?"}],
                         completion=[{"role": "assistant",
                                      "content": f"{i} + {i % 3} = {i + i % 3 + answer_offset}\nAnswer: "
                                                 f"{i + i % 3 + answer_offset}"}],
                         meta={"problem_id": f"p{i}"}) for i in range(8)]


@pytest.fixture(scope="module")
def train_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("gkd-data") / "train.jsonl"
    io.write_jsonl(path, examples())
    return path


def train_cfg(student, **kw):
    base = dict(student=str(student), max_steps=2, batch_size=4, learning_rate=3e-3, logging_steps=1,
                warmup_ratio=0.0, dtype="float32", device="cpu", max_length=128)
    return TrainConfig(**{**base, **kw})


def gkd_cfg(teacher, **kw):
    return GKDObjectiveConfig(**{"teacher": str(teacher), "max_new_tokens": 8, **kw})


def weights(model_dir):
    from safetensors.torch import load_file
    return load_file(str(model_dir / "model.safetensors"))


class GenerateSpy:
    """Wraps ``LlamaForCausalLM.generate``: counts calls by trainable models (the student) and the
    tokens each row sampled, up to and including the first eos."""

    def __init__(self, monkeypatch, eos_id, forbid=False):
        from transformers import LlamaForCausalLM

        self.calls, self.rows, self.sampled_ids = 0, 0, set()
        self.tokens = 0
        original = LlamaForCausalLM.generate

        def generate(model, *args, **kwargs):
            if forbid:
                raise AssertionError("the student sampled although lmbda = 0")
            assert any(p.requires_grad for p in model.parameters()), "only the student may generate"
            out = original(model, *args, **kwargs)
            new = out[:, kwargs["input_ids"].shape[1]:]
            self.calls += 1
            self.rows += len(new)
            for row in new.tolist():
                row = row[:row.index(eos_id) + 1] if eos_id in row else row
                self.tokens += len(row)
                self.sampled_ids.update(row)
            return out

        monkeypatch.setattr(LlamaForCausalLM, "generate", generate)


def test_lambda_one_samples_the_student_and_trains_only_on_its_samples(tmp_path, tiny_model_dir, train_path, tok,
                                                                       monkeypatch):
    # the student has 32 padded output rows the teacher (49152 rows) lacks: it must never sample them
    student, teacher = padded_student(tmp_path / "student", tok), tiny_model_dir
    spy = GenerateSpy(monkeypatch, tok.eos_token_id)
    m = gkd.run(train_cfg(student), gkd_cfg(teacher, lmbda=1.0), train_path, tmp_path / "a")
    out = m["outputs"]
    assert spy.calls == 2 and spy.rows == 8  # one generate per step, every row of every batch
    assert out["on_policy_seqs"] == 8 and out["cached_seqs"] == 0 and out["cached_tokens"] == 0
    assert out["on_policy_tokens"] == spy.tokens > 0  # the loss ran over exactly the sampled tokens
    # the tokens trained are the rows trained on: each prompt with its sampled completion (not the cached one)
    prompts = sum(len(f["prompt"]) for f in gkd.tokenize(examples(), tok, 128)[0])
    assert out["tokens_trained"] == prompts + spy.tokens
    assert out["mean_sampled_len"] <= 8
    assert out["shared_vocab"] == 49152 and out["student_rows"] == 49152 + 32 and max(spy.sampled_ids) < 49152
    trained = weights(tmp_path / "a" / "model")
    initial = weights(student)
    assert not torch.equal(trained["model.embed_tokens.weight"], initial["model.embed_tokens.weight"])
    # other cached completions for the same prompts change nothing: they were never trained on
    other = tmp_path / "other.jsonl"
    io.write_jsonl(other, examples(answer_offset=100))
    gkd.run(train_cfg(student), gkd_cfg(teacher, lmbda=1.0), other, tmp_path / "b")
    again = weights(tmp_path / "b" / "model")
    assert all(torch.equal(trained[k], again[k]) for k in trained)


def test_lambda_zero_never_samples_and_trains_on_the_cached_traces(tmp_path, tiny_model_dir, teacher_dir,
                                                                   train_path, tok, monkeypatch):
    GenerateSpy(monkeypatch, tok.eos_token_id, forbid=True)
    m = gkd.run(train_cfg(tiny_model_dir), gkd_cfg(teacher_dir, lmbda=0.0), train_path, tmp_path / "a")
    out = m["outputs"]
    features, _ = gkd.tokenize(examples(), tok, 128)
    assert out["on_policy_seqs"] == 0 and out["on_policy_tokens"] == 0 and out["mean_sampled_len"] is None
    assert out["cached_seqs"] == 8  # 2 steps x 4 = one epoch over the 8 examples
    assert out["cached_tokens"] == sum(len(f["completion"]) for f in features)
    assert out["tokens_trained"] == sum(len(f["prompt"]) + len(f["completion"]) for f in features)
    # and the cached completions matter here
    other = tmp_path / "other.jsonl"
    io.write_jsonl(other, examples(answer_offset=100))
    monkeypatch.setitem(OBJECTIVES, "gkd", GKD_ROW)  # the row this objective adds to train/__init__.py
    cfg = train_cfg(tiny_model_dir, method="gkd",
                    objective={"teacher": str(teacher_dir), "lmbda": 0, "max_new_tokens": 8})
    assert run_objective(cfg, other, tmp_path / "b")["method"] == "gkd"
    a, b = weights(tmp_path / "a" / "model"), weights(tmp_path / "b" / "model")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def cached_jsd(student_dir, teacher_dir, tok, beta=0.5):
    """The generalised JSD of a saved student to the teacher over the cached completions."""
    from transformers import LlamaForCausalLM

    from reasondistill.train.losses.jsd import jsd

    features, _ = gkd.tokenize(examples(), tok, 128)
    batch = gkd._trainer_class().assemble([f["prompt"] for f in features], [f["completion"] for f in features],
                                          tok.pad_token_id)
    with torch.no_grad():
        logits = [LlamaForCausalLM.from_pretrained(d)(input_ids=batch["input_ids"],
                                                      attention_mask=batch["attention_mask"]).logits[..., :49152]
                  for d in (student_dir, teacher_dir)]
    return float(jsd(logits[0], logits[1], batch["loss_mask"], beta=beta))


def test_mixed_run_lowers_the_loss_over_padded_teacher_rows_and_skips_when_done(tmp_path, tok, teacher_dir,
                                                                               train_path):
    student = tiny_llama(tmp_path / "student", tok, seed=0, init_range=0.1)
    cfg = train_cfg(student, max_steps=8, logging_steps=4, learning_rate=1e-2)
    g = gkd_cfg(teacher_dir, lmbda=0.5, beta=0.5, temperature=1.0)
    m = gkd.run(cfg, g, train_path, tmp_path / "out")
    out = m["outputs"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert len(losses) == 2 and losses[-1] < 0.95 * losses[0], losses
    # the student moved towards the teacher on fixed sequences too, not only on its own samples
    before, after = cached_jsd(student, teacher_dir, tok), cached_jsd(tmp_path / "out" / "model", teacher_dir, tok)
    assert after < 0.95 * before, (before, after)
    assert out["on_policy_seqs"] + out["cached_seqs"] == 32 and out["on_policy_seqs"] > 0 and out["cached_seqs"] > 0
    assert all(0 <= r["on_policy_frac"] <= 1 for r in rows)
    assert out["shared_vocab"] == 49152 and out["teacher_rows"] == 49152 + 64 and out["student_rows"] == 49152
    assert any("truncated to the shared vocab size 49152" in n for n in out["preflight"]["notes"])
    assert m["method"] == "gkd" and m["config"]["gkd"]["lmbda"] == 0.5 and out["steps"] == 8
    # same config and inputs: skipped, nothing retrained
    mtime = (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns
    assert gkd.run(cfg, g, train_path, tmp_path / "out")["wall_seconds"] == m["wall_seconds"]
    assert (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns == mtime


def test_loss_mask_marks_the_logits_that_predict_each_completion_token():
    prompts = [torch.tensor([5, 6, 7]), torch.tensor([8])]
    completions = [torch.tensor([1, 2]), torch.tensor([3, 4, 9])]
    batch = gkd._trainer_class().assemble(prompts, completions, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1, 2], [8, 3, 4, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    for row, c in zip(range(2), completions):
        pos = batch["loss_mask"][row].nonzero().squeeze(-1)
        assert batch["input_ids"][row, pos + 1].tolist() == c.tolist()


def test_loss_is_the_tempered_jsd_over_completion_positions_and_shared_rows(tmp_path, tiny_model_dir, teacher_dir,
                                                                          tok):
    from transformers import LlamaForCausalLM

    from reasondistill.train.losses.jsd import jsd

    student, teacher = (LlamaForCausalLM.from_pretrained(d) for d in (tiny_model_dir, teacher_dir))
    g = gkd_cfg(teacher_dir, beta=0.3, temperature=2.0)
    trainer = gkd._trainer_class()(model=student, args=base.training_args(train_cfg(tiny_model_dir), tmp_path, False,
                                                                         "cpu"),
                                   data_collator=gkd.Collator(tok.pad_token_id), processing_class=tok,
                                   teacher=teacher, gkd_cfg=g, stop_ids=[tok.eos_token_id], shared_vocab=49152,
                                   max_length=128)
    features, _ = gkd.tokenize(examples()[:2], tok, 128)
    prompts = [features[0]["prompt"], features[1]["prompt"][6:]]  # ragged prompts and completions
    completions = [features[0]["completion"][:5], features[1]["completion"]]
    batch = trainer.assemble(prompts, completions, tok.pad_token_id)
    got = trainer.compute_loss(student, batch)
    with torch.no_grad():
        s_logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert t_logits.shape[-1] == 49152 + 64
    want = jsd(s_logits, t_logits[..., :49152], batch["loss_mask"], 2.0, beta=0.3)
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    assert float(got) != pytest.approx(float(jsd(s_logits, t_logits[..., :49152], batch["loss_mask"], 1.0,
                                                 beta=0.3)), rel=1e-2)
    got.backward()
    assert student.get_input_embeddings().weight.grad.abs().sum() > 0 and teacher.lm_head.weight.grad is None


def other_tokenizer():
    """A small word-level tokenizer: a real vocabulary mismatch with SmolLM2's."""
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "user", "assistant", "What", "is", "Answer", "?", "+",
             "=", ":", *"0123456789"]
    raw = Tokenizer(tmodels.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<|endoftext|>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    return tok


def no_model_load(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(models, "load_model", boom)


def test_vocabulary_mismatch_is_a_clear_config_error_before_any_weights_load(tmp_path, tiny_model_dir, train_path,
                                                                           monkeypatch):
    teacher = tiny_llama(tmp_path / "other", other_tokenizer(), weights=False)
    no_model_load(monkeypatch)
    with pytest.raises(ConfigError) as err:
        gkd.run(train_cfg(tiny_model_dir), gkd_cfg(teacher), train_path, tmp_path / "out")
    msg = str(err.value)
    assert "do not share a vocabulary" in msg and "student 49152 tokens, teacher 22" in msg
    assert "sequence-level distillation" in msg and "train.method=sft" in msg
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("bad, match", [
    ({"lmbda": 1.5}, r"gkd.lmbda must be in \[0, 1\]"),
    ({"lmbda": -0.1}, r"gkd.lmbda must be in \[0, 1\]"),
    ({"lmbda": math.nan}, r"gkd.lmbda must be in \[0, 1\]"),
    ({"lmbda": "half"}, "gkd.lmbda must be a number"),
    ({"beta": 1.01}, r"gkd.beta must be in \[0, 1\]"),
    ({"temperature": 0.0}, "gkd.temperature must be a finite number > 0"),
    ({"temperature": math.inf}, "gkd.temperature must be a finite number > 0"),
    ({"max_new_tokens": 0}, "gkd.max_new_tokens must be an integer >= 1"),
    ({"max_new_tokens": True}, "gkd.max_new_tokens must be an integer >= 1"),
    ({"teacher": ""}, "gkd.teacher is required"),
    ({"teacher_dtype": "int8"}, "gkd.teacher_dtype = 'int8' is not one of"),
])
def test_bad_options_are_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        GKDObjectiveConfig(**{"teacher": "t", **bad})


def test_bad_lambda_in_a_recipe_fails_before_any_model_is_resolved_or_loaded(tiny_model_dir, teacher_dir,
                                                                            monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "gkd", GKD_ROW)
    no_model_load(monkeypatch)
    monkeypatch.setattr(models, "resolve", lambda *a, **k: pytest.fail("a model was resolved"))
    with pytest.raises(ConfigError, match=r"gkd.lmbda must be in \[0, 1\]"):
        objective_config("gkd", {"teacher": str(teacher_dir), "lmbda": 2})
    cfg = TrainConfig(student=str(tiny_model_dir), method="gkd", objective={"teacher": str(teacher_dir), "lmbda": 1})
    assert cfg.objective["lmbda"] == 1


def test_config_module_is_light():
    code = "import sys, reasondistill.train.gkd_config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_defaults_are_documented_and_round_trip():
    cfg = GKDObjectiveConfig(teacher="smollm2-135m-instruct")
    assert dataclasses.asdict(cfg) == {"teacher": "smollm2-135m-instruct", "lmbda": 0.5, "loss": "jsd", "beta": 0.5,
                                       "alpha": 0.1, "temperature": 1.0, "max_new_tokens": 128,
                                       "teacher_dtype": "auto", "teacher_top_k": 20, "score_tolerance": 0.001,
                                       "loss_options": {}}
