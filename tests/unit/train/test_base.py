"""The trainer base: the one encoder, the one padder, prompt masking, the save-run step and the cache."""

import json
from types import SimpleNamespace

import pytest
import torch
from rl_tiny_models import CHATML, one_thread, small_tokenizer, tiny_llama  # noqa: F401

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import InputError
from reasondistill.records import PreferenceExample, TrainExample
from reasondistill.train import base, gkd, multitask, preference, sft
from reasondistill.train.multitask import MultiTaskConfig

pytestmark = pytest.mark.usefixtures("one_thread")

# Renders every turn with a marker once the conversation has been answered, as templates do that
# rewrite earlier turns (e.g. drop past reasoning) when an assistant message follows: the prompt as
# rendered for generation is then not a prefix of the rendered conversation.
UNSPLITTABLE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}"
                "{% if messages[-1]['role'] == 'assistant' %} (answered){% endif %}\n{{ m['content'] }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

PROMPT = [{"role": "user", "content": "1 + 2 ="}]
COMPLETION = [{"role": "assistant", "content": "1 + 2 = 3\nAnswer: 3"}]


@pytest.fixture(scope="module")
def tok():
    return small_tokenizer()


@pytest.fixture(scope="module")
def unsplittable():
    t = small_tokenizer()
    t.chat_template = UNSPLITTABLE
    return t


def test_encode_pair_splits_a_prefix_template(tok):
    prompt_ids, full_ids = base.encode_pair(tok, PROMPT, COMPLETION, path="t.jsonl", line=1)
    assert full_ids[:len(prompt_ids)] == prompt_ids and len(full_ids) > len(prompt_ids)
    assert tok.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    assert tok.decode(full_ids[len(prompt_ids):]) == "1 + 2 = 3\nAnswer: 3<|im_end|>\n"


def test_encode_pair_refuses_a_template_that_cannot_be_split(unsplittable):
    with pytest.raises(InputError, match=r"^t.jsonl:3: field 'prompt': trace 'x': the chat template cannot be split"):
        base.encode_pair(unsplittable, PROMPT, COMPLETION, path="t.jsonl", line=3, what="trace 'x': ")


def test_every_objective_splits_with_the_one_encoder(unsplittable):
    """SFT, multitask, GKD and the preference objectives all refuse the template, at the record's line."""
    ok = TrainExample(prompt=PROMPT, completion=COMPLETION)
    with pytest.raises(InputError, match=r"t.jsonl:1: .*cannot be split"):
        sft.tokenize([ok], unsplittable, 64, path="t.jsonl")
    with pytest.raises(InputError, match=r"t.jsonl:1: .*cannot be split"):
        gkd.tokenize([ok], unsplittable, 64, path="t.jsonl")
    rows = multitask.build_tasks([ok, ok], MultiTaskConfig())
    with pytest.raises(InputError, match=r"t.jsonl:1: field 'prompt': label task: the chat template cannot be split"):
        multitask.encode_tasks(unsplittable, rows, 64, path="t.jsonl")
    pair = PreferenceExample(prompt=PROMPT, chosen=COMPLETION, rejected=[{"role": "assistant", "content": "4"}])
    with pytest.raises(InputError, match=r"p.jsonl:1: field 'prompt': chosen: the chat template cannot be split"):
        preference.tokenize_pairs(unsplittable, [pair], 64, path="p.jsonl")


def test_prompt_positions_are_ignored_and_long_prompts_yield_nothing(tok):
    prompt_ids, full_ids = base.encode_pair(tok, PROMPT, COMPLETION, path="t.jsonl", line=1)
    n = len(prompt_ids)
    f = base.supervised(prompt_ids, full_ids, max_length=512)
    assert f["input_ids"].tolist() == full_ids
    assert (f["labels"][:n] == base.IGNORE).all() and f["labels"][n:].tolist() == full_ids[n:]
    cut = base.supervised(prompt_ids, full_ids, max_length=n + 2)
    assert len(cut["input_ids"]) == n + 2 and cut["labels"][n:].tolist() == full_ids[n:n + 2]
    assert base.supervised(prompt_ids, full_ids, max_length=n) is None
    # the trainers' targets: logits at p predict label p + 1, so the last prompt position is the first trained
    targets = base.next_token_targets(f["labels"][None])
    assert (targets[0] != base.IGNORE).nonzero()[0].item() == n - 1


def test_pad_batch_right_and_left():
    features = [{"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([base.IGNORE, 6, 7]),
                 "extra": torch.ones(3, 2)},
                {"input_ids": torch.tensor([8]), "labels": torch.tensor([8]), "extra": torch.ones(1, 2)}]
    pad = {"input_ids": 0, "labels": base.IGNORE, "extra": 0.0}
    right = base.pad_batch(features, pad)
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["labels"].tolist() == [[base.IGNORE, 6, 7], [8, base.IGNORE, base.IGNORE]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["extra"].shape == (2, 3, 2) and right["extra"][1, 1:].abs().sum() == 0
    left = base.pad_batch(features, pad, left=True)
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert left["extra"][1, :2].abs().sum() == 0 and left["extra"][1, 2].tolist() == [1.0, 1.0]


@pytest.fixture()
def student(tmp_path, tok):
    return tiny_llama(tmp_path / "student", tok)


def test_finish_writes_checkpoint_and_loss_log_atomically(tmp_path, student, tok, monkeypatch):
    model = models.load_model(str(student), dtype="float32", device="cpu")
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}]
    result = SimpleNamespace(global_step=2, training_loss=1.75)
    out = base.finish(tmp_path / "run", model, tok, result, history, method="m", outputs={"n_examples": 4})
    model_dir = tmp_path / "run" / base.MODEL_DIR
    assert out == {"files": ["loss.jsonl"], "model_dir": "model", "method": "m", "steps": 2,
                   "train_loss": 1.75, "first_loss": 2.0, "last_loss": 1.5, "n_examples": 4}
    assert [json.loads(line) for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()] == history
    assert (model_dir / "model.safetensors").exists() and not list(model_dir.glob("*.bin"))
    assert (model_dir / models.CHECKPOINT_NOTE).exists() and not (tmp_path / "run" / "model.tmp").exists()
    saved = (model_dir / "model.safetensors").read_bytes()

    # a save that dies half-way leaves the previous checkpoint where it was, whole
    def dies(path, **kwargs):
        (path / "model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        (path / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", dies)
    with pytest.raises(OSError, match="disk full"):
        base.finish(tmp_path / "run", model, tok, result, history, method="m")
    assert (model_dir / "model.safetensors").read_bytes() == saved
    assert models.load_model(str(model_dir), dtype="float32", device="cpu") is not None


def test_cached_run_trains_once_then_reuses_the_manifest(tmp_path, student, tok):
    data = tmp_path / "data.jsonl"
    io.write_jsonl(data, [TrainExample(prompt=PROMPT, completion=COMPLETION)])
    calls = []

    def train():
        calls.append(1)
        model = models.load_model(str(student), dtype="float32", device="cpu")
        return model, tok, SimpleNamespace(global_step=1, training_loss=0.5), [{"loss": 0.5}], {"n_examples": 1}

    first = base.cached_run(tmp_path / "out", "m", {"a": 1}, [data], train)
    again = base.cached_run(tmp_path / "out", "m", {"a": 1}, [data], train)
    assert len(calls) == 1 and again["this_run"] == {"skipped": True} and first["this_run"] == {"skipped": False}
    assert first["stage"] == "train" and first["method"] == "m" and first["outputs"]["n_examples"] == 1
    base.cached_run(tmp_path / "out", "m", {"a": 2}, [data], train)  # another config: trained again
    assert len(calls) == 2


def test_training_args_shared_keywords_and_objective_overrides(tmp_path):
    from trl import GRPOConfig

    cfg = TrainConfig(max_steps=3, batch_size=4, learning_rate=1e-3, seed=7)
    args = base.training_args(cfg, tmp_path, False, "cpu")
    assert (args.max_steps, args.per_device_train_batch_size, args.seed, args.save_strategy) == (3, 4, 7, "no")
    assert args.output_dir == str(tmp_path / "trainer")
    grpo_args = base.training_args(cfg, tmp_path, False, "cpu", cls=GRPOConfig, num_generations=4, seed=8)
    assert isinstance(grpo_args, GRPOConfig) and grpo_args.num_generations == 4 and grpo_args.seed == 8
