import dataclasses
import json

import pytest
import torch

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError, InputError
from reasondistill.records import Problem, TrainExample
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.logprobs import LogprobReader, LogprobWriter
from reasondistill.backends.transformers import TransformersBackend
from reasondistill.train import TrainContext, base, kd, sft
from reasondistill.train.kd import KDConfig

K = 8


@pytest.fixture(scope="module")
def teacher_data(tiny_model_dir, tmp_path_factory):
    """A second random tiny Llama (same tokenizer) as teacher: its completions, as curated
    TrainExamples, and its top-k logprobs in a store.

    The teacher may only *write* digits (each digit is its own token, so the decoded text
    re-tokenizes to exactly the teacher's ids); its logprobs still span the whole vocabulary.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    cfg = LlamaConfig.from_pretrained(tiny_model_dir)
    teacher = LlamaForCausalLM(cfg)
    with torch.no_grad():
        teacher.get_output_embeddings().weight.mul_(30.0)  # a peaked, not near-uniform, teacher
    digits = set(tok.convert_tokens_to_ids(list("0123456789")))
    teacher.generation_config.suppress_tokens = [i for i in range(len(tok)) if i not in digits]
    backend = TransformersBackend.from_model(teacher, tok, name="tiny-teacher")
    problems = [Problem(f"p{i}", "t", f"What is {i} + {i % 3}?", str(i + i % 3)) for i in range(8)]
    reqs = [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in problems]
    comps = backend.complete(reqs, SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=10, top_logprobs=K))
    root = tmp_path_factory.mktemp("kd-data")
    examples = []
    with LogprobWriter(root / "logprobs", K, vocab_size=len(tok)) as w:
        for r, c in zip(reqs, comps):
            trace_id = f"{r.problem.id}/tiny-teacher/s0"
            w.add_completion(trace_id, c.logprobs)
            examples.append(TrainExample(prompt=list(r.messages),
                                         completion=[{"role": "assistant", "content": c.text.strip()}],
                                         meta={"problem_id": r.problem.id, "trace_id": trace_id}))
    io.write_jsonl(root / "train.jsonl", examples)
    return root / "train.jsonl", root / "logprobs", examples


def train_cfg(tiny_model_dir, **kw):
    base = dict(student=str(tiny_model_dir), max_steps=8, batch_size=4, learning_rate=3e-3, logging_steps=4,
                warmup_ratio=0.0, dtype="float32", device="cpu")
    return TrainConfig(**{**base, **kw})


def test_kd_lowers_loss_saves_checkpoint_and_manifest(tmp_path, teacher_data, tiny_model_dir):
    train_path, store, _ = teacher_data
    m = kd.run(train_cfg(tiny_model_dir), KDConfig(loss="forward_kl", top_k=K), train_path, tmp_path / "out",
           context=TrainContext(logprobs=store))
    rows = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    kd_losses = [r["kd_loss"] for r in rows]
    assert len(kd_losses) == 2 and kd_losses[-1] < kd_losses[0]
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    out = m["outputs"]
    assert out["steps"] == 8 and out["n_examples"] == 8 and out["n_kd_tokens"] == 80
    assert out["store_bytes_per_token"] <= 150 and m["config"]["kd"]["loss"] == "forward_kl"
    # same config and inputs: skipped
    mtime = (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns
    kd.run(train_cfg(tiny_model_dir), KDConfig(loss="forward_kl", top_k=K), train_path, tmp_path / "out",
           context=TrainContext(logprobs=store))
    assert (tmp_path / "out" / "model" / "model.safetensors").stat().st_mtime_ns == mtime


def test_teacher_targets_sit_at_the_logits_that_predict_each_completion_token(teacher_data, tiny_model_dir):
    train_path, store, examples = teacher_data
    tok = models.load_tokenizer(str(tiny_model_dir))
    reader = LogprobReader(store)
    features, counts = kd.tokenize(examples, tok, reader, 4, 512)
    f = features[0]
    tokens, ids, lps, _ = reader.get(examples[0].meta["trace_id"], k=4)
    pos = f["kd_mask"].nonzero().squeeze(-1)
    assert len(pos) == len(tokens) == 10
    assert f["input_ids"][pos + 1].tolist() == tokens.tolist()  # logits at p predict token p + 1
    assert torch.equal(f["teacher_ids"][pos], torch.from_numpy(ids))
    # CE labels cover the completion and the template's end of turn; the prompt is ignored
    assert (f["labels"][: pos[0] + 1] == -100).all() and (f["labels"][pos[0] + 1:] != -100).all()
    # truncation keeps what fits
    short, counts = kd.tokenize(examples[:1], tok, reader, 4, int(pos[0]) + 4)
    assert short[0]["kd_mask"].sum() == 4 and counts["n_truncated"] == 1


class _Stop(Exception):
    pass


def batch_order(monkeypatch, train) -> list[list[list[int]]]:
    """The input ids of every batch the trainer ``train()`` builds would read, in order (it stops
    before the first step)."""
    seen = []

    def fit(trainer, cfg, out_dir):
        seen.extend(batch["input_ids"].tolist() for batch in trainer.get_train_dataloader())
        raise _Stop

    monkeypatch.setattr(base, "fit", fit)
    with pytest.raises(_Stop):
        train()
    return seen


def test_sft_and_kd_read_the_same_traces_in_the_same_order(monkeypatch, tmp_path, teacher_data, tiny_model_dir):
    # what lets compare pair their seeds (OBJECTIVES[...].trace_rows, compare.seeds_paired)
    train_path, store, examples = teacher_data
    kd_cfg = KDConfig(loss="forward_kl", top_k=K)

    def orders(seed):
        cfg = train_cfg(tiny_model_dir, seed=seed, batch_size=2)
        return (batch_order(monkeypatch, lambda: sft.train(cfg, examples, tmp_path / "sft", train_path)),
                batch_order(monkeypatch, lambda: kd.train(cfg, kd_cfg, examples, LogprobReader(store),
                                                          tmp_path / "kd", train_path)))

    sft_0, kd_0 = orders(0)
    assert len(sft_0) == 4 and sft_0 == kd_0
    sft_1, kd_1 = orders(1)
    assert sft_1 == kd_1 and sft_1 != sft_0  # another seed, another order: the equality is not vacuous


def test_lora_with_another_loss_mixed_with_ce(tmp_path, teacher_data, tiny_model_dir):
    train_path, store, _ = teacher_data
    m = kd.run(train_cfg(tiny_model_dir, max_steps=2, logging_steps=1, lora=True, lora_r=4),
               KDConfig(loss="jsd", beta=0.3, ce_weight=0.3, top_k=4), train_path, tmp_path / "o",
           context=TrainContext(logprobs=store))
    assert not (tmp_path / "o" / "model" / "adapter_config.json").exists()
    row = json.loads((tmp_path / "o" / "loss.jsonl").read_text().splitlines()[0])
    assert row["loss"] == pytest.approx(0.7 * row["kd_loss"] + 0.3 * row["ce_loss"], rel=1e-3)
    assert m["outputs"]["steps"] == 2
    # both terms weighted: their first-batch magnitudes were compared and the finding recorded
    pre = m["outputs"]["preflight"]
    assert any("loss terms" in line and "kd=" in line and "ce=" in line for line in pre["notes"] + pre["warnings"])


def no_model_load(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models, "load_model", boom)


@pytest.mark.parametrize("bad, match", [
    ({"alpha": 1.5}, r"kd.alpha must be in \[0, 1\)"),
    ({"loss": "kl"}, "kd.loss = 'kl' is not one of: forward_kl"),
    ({"ce_weight": -0.1}, "ce_weight"),
    ({"top_k": 0}, "top_k"),
    ({"temperature": 0}, "temperature"),
])
def test_bad_config_is_a_config_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        KDConfig(**bad)


def test_store_too_small_and_mismatched_tokens_fail_before_model_load(tmp_path, teacher_data, tiny_model_dir,
                                                                      monkeypatch):
    train_path, store, examples = teacher_data
    no_model_load(monkeypatch)
    with pytest.raises(ConfigError, match=f"kd.top_k = 20 but the logprob store .* only the top {K}"):
        kd.run(train_cfg(tiny_model_dir), KDConfig(top_k=20), train_path, tmp_path / "a",
               context=TrainContext(logprobs=store))
    edited = [dataclasses.replace(examples[0], completion=[{"role": "assistant", "content": "x" +
                                                            examples[0].completion[0]["content"]}])]
    io.write_jsonl(tmp_path / "edited.jsonl", edited + examples[1:])
    with pytest.raises(InputError, match=r"edited.jsonl:1: field 'completion': trace 'p0/tiny-teacher/s0': "
                                         r"the student's tokenized completion differs .* at completion token 0"):
        kd.run(train_cfg(tiny_model_dir), KDConfig(top_k=K), tmp_path / "edited.jsonl", tmp_path / "b",
               context=TrainContext(logprobs=store))
    orphan = [dataclasses.replace(examples[0], meta={"trace_id": "p9/other/s0"})]
    io.write_jsonl(tmp_path / "orphan.jsonl", orphan)
    with pytest.raises(InputError, match="trace 'p9/other/s0' has no teacher logprobs"):
        kd.run(train_cfg(tiny_model_dir), KDConfig(top_k=K), tmp_path / "orphan.jsonl", tmp_path / "c",
               context=TrainContext(logprobs=store))


def test_end_of_turn_after_the_teachers_tokens_keeps_its_label_as_target():
    """With ce_weight=0, the token the teacher never scored (end of turn) still gets a target."""
    import torch

    from reasondistill.train.kd import IGNORE, with_uncovered_targets

    torch.manual_seed(0)
    logits = torch.randn(6, 11, requires_grad=True)  # one row per position
    targets = torch.tensor([IGNORE, 3, 4, 5, 7, IGNORE])  # row p predicts completion token p + 1 (tokens 2..5)
    kd_rows = torch.tensor([False, True, True, True, False, False])  # teacher scored tokens at 2..4
    kd = torch.tensor(0.5)
    out = with_uncovered_targets(kd, logits, targets, kd_rows)
    assert not torch.isclose(out, kd)
    out.backward()
    assert logits.grad[4].abs().sum() > 0  # the position predicting the end-of-turn token learns
    assert logits.grad[:4].abs().sum() == 0 and logits.grad[5].abs().sum() == 0
    other = targets.clone()
    other[4] = 8
    assert not torch.isclose(with_uncovered_targets(kd, logits, other, kd_rows), out)
    # nothing uncovered: the KD term is returned unchanged
    full = torch.tensor([False, True, True, True, True, False])
    assert with_uncovered_targets(kd, logits, targets, full) is kd
