import json

import pytest
import torch

from reasondistill import io
from reasondistill.config import TrainConfig
from reasondistill.errors import InputError
from reasondistill.records import TrainExample
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.transformers import TransformersBackend
from reasondistill.records import Problem
from reasondistill.train import base, sft


def examples(n=16):
    out = []
    for i in range(n):
        a, b = i % 7, (3 * i) % 5
        out.append(TrainExample(prompt=[{"role": "user", "content": f"{a} + {b} ="}],
                                completion=[{"role": "assistant", "content": f"{a} + {b} = {a + b}\nAnswer: {a + b}"}]))
    return out


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "train.jsonl"
    io.write_jsonl(path, examples())
    return path


def greedy(model_or_dir, tok=None, n=4):
    probs = [Problem(f"p{i}", "t", f"{i} + 1 =", str(i + 1)) for i in range(n)]
    if tok is None:
        t = TransformersBackend(str(model_or_dir), dtype="float32", device="cpu")
    else:
        t = TransformersBackend.from_model(model_or_dir, tok, name="m")
    reqs = [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in probs]
    return [c.text for c in t.complete(reqs, SamplingParams(temperature=0, max_new_tokens=12))]


def test_sft_lowers_loss_and_skips_finished_run(tmp_path, data, tiny_model_dir):
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=12, batch_size=4, learning_rate=3e-3,
                      logging_steps=4, dtype="float32", device="cpu")
    m = sft.run(cfg, None, data, tmp_path / "out")
    losses = [json.loads(line)["loss"] for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model_dir = tmp_path / "out" / "model"
    assert (model_dir / "model.safetensors").exists() and not list(model_dir.glob("*.bin"))
    assert m["outputs"]["steps"] == 12
    # re-run with the same config and data: skipped, checkpoint untouched
    mtime = (model_dir / "model.safetensors").stat().st_mtime_ns
    sft.run(cfg, None, data, tmp_path / "out")
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_checkpoint_reloaded_gives_same_greedy_outputs_as_saved_model(tmp_path, tiny_model_dir):
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=30, batch_size=4, learning_rate=5e-3,
                      dtype="float32", device="cpu")
    model, tok, _, _, _ = sft.train(cfg, examples(), tmp_path)
    before = greedy(tiny_model_dir)
    in_memory = greedy(model, tok)
    assert in_memory != before  # training changed what the model says
    path = base.save_checkpoint(model, tok, tmp_path / "ckpt")
    assert greedy(path) == in_memory
    from transformers import AutoModelForCausalLM
    reloaded = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = tok("3 + 4 = 7", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-5)


def test_lora_merges_into_plain_checkpoint(tmp_path, data, tiny_model_dir):
    cfg = TrainConfig(student=str(tiny_model_dir), lora=True, lora_r=4, max_steps=3, batch_size=4,
                      learning_rate=1e-2, dtype="float32", device="cpu")
    sft.run(cfg, None, data, tmp_path / "lora")
    model_dir = tmp_path / "lora" / "model"
    assert (model_dir / "model.safetensors").exists()
    assert not (model_dir / "adapter_config.json").exists()
    from transformers import AutoModelForCausalLM
    merged = AutoModelForCausalLM.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    diff = sum((a - b).abs().sum().item() for a, b in zip(merged.parameters(), base.parameters()))
    assert diff > 0


def test_empty_completion_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": [{"role": "user", "content": "q"}],
                                "completion": [{"role": "assistant", "content": "fine"}]}) + "\n" +
                    json.dumps({"prompt": [{"role": "user", "content": "q"}],
                                "completion": [{"role": "assistant", "content": "  "}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2: field 'completion'"):
        base.load_examples(path)


def test_completion_only_loss_equals_full_logits_cross_entropy(tiny_model_dir, tmp_path):
    """Projecting only completion positions gives the loss HF computes from every position's logits."""
    from transformers import AutoModelForCausalLM

    from reasondistill import models

    tok = models.load_tokenizer(str(tiny_model_dir))
    varied = examples(5) + [TrainExample(prompt=[{"role": "user", "content": "12 + 30 + 7 ="}],
                                         completion=[{"role": "assistant", "content": "12 + 30 = 42\n42 + 7 = 49\nAnswer: 49"}])]
    feats, counts = sft.tokenize(varied, tok, max_length=512)
    assert counts == {"n_truncated": 0, "n_dropped_too_long": 0}
    batch = sft.Collator(tok.pad_token_id)(feats)
    assert batch["input_ids"].shape[0] == 6 and (batch["attention_mask"] == 0).any()  # padded rows
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=1, batch_size=6, dtype="float32", device="cpu")
    trainer = sft._trainer_class()(model=model, args=base.training_args(cfg, tmp_path, False, "cpu"),
                                   train_dataset=feats, data_collator=sft.Collator(tok.pad_token_id))
    ours = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        ref = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.allclose(ours, ref, atol=1e-5)
    # with the step's token count from Trainer (gradient accumulation), the sum is divided by it instead
    n = int((batch["labels"][:, 1:] != -100).sum())
    assert torch.allclose(trainer.compute_loss(model, dict(batch), num_items_in_batch=2 * n), ref / 2, atol=1e-5)


def test_prompt_only_examples_are_dropped_and_counted(tiny_model_dir, tmp_path):
    from reasondistill import models

    tok = models.load_tokenizer(str(tiny_model_dir))
    long = TrainExample(prompt=[{"role": "user", "content": "word " * 80}],
                        completion=[{"role": "assistant", "content": "Answer: 1"}])
    feats, counts = sft.tokenize([long] + examples(2), tok, max_length=40, path="t.jsonl")
    assert len(feats) == 2 and counts["n_dropped_too_long"] == 1
    assert all(len(f["input_ids"]) <= 40 for f in feats)
    with pytest.raises(InputError, match=r"t.jsonl: field 'prompt'.*raise train.max_length"):
        sft.tokenize([long], tok, max_length=40, path="t.jsonl")


def test_preflight_report_lands_in_the_manifest(tmp_path, data, tiny_model_dir):
    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=1, batch_size=4, dtype="float32", device="cpu")
    m = sft.run(cfg, None, data, tmp_path / "out")
    pre = m["outputs"]["preflight"]
    assert pre["ok"] and pre["stop_ids"]  # the rendered example ends on a stop token


def test_report_to_reaches_training_arguments(tmp_path):
    from reasondistill.config import load_recipe
    assert TrainConfig().report_to == [] and base.training_args(TrainConfig(), tmp_path, False, "cpu").report_to == []
    cfg = load_recipe("default", ["train.report_to=[tensorboard]"]).train
    assert cfg.report_to == ["tensorboard"]
    assert base.training_args(cfg, tmp_path, False, "cpu").report_to == ["tensorboard"]


def test_report_to_tensorboard_keeps_the_event_files(tmp_path, data, tiny_model_dir):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(student=str(tiny_model_dir), max_steps=3, batch_size=4, logging_steps=1, dtype="float32",
                      device="cpu", report_to=["tensorboard"])
    out = tmp_path / "out"
    sft.run(cfg, None, data, out)
    assert not (out / "trainer").exists()  # the scratch folder still goes; the logs moved out of it
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and list(runs[0].glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"] and [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
