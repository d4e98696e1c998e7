"""The no-teacher control of on-policy distillation: a fixed advantage -c on the student's own samples."""

import json
import math

import pytest
import torch

from reasondistill import io
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import OBJECTIVES, negative_advantage as na, objective_config, run_objective


def test_loss_is_c_times_the_mean_sampled_logprob_and_its_gradient_pushes_the_samples_down():
    # two sampled tokens (both id 0) over a 3-token vocabulary: p = 1/3 and p = 3/5
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0]], requires_grad=True)
    targets = torch.tensor([0, 0])
    out = na.loss(logits, targets, c=2.0)
    assert out.item() == pytest.approx(math.log(1 / 3) + math.log(3 / 5))  # 2 * mean = ln(1/5)
    out.backward()
    # d/dz of (c / N) * sum log softmax(z)[t] = (c / N) * (onehot(t) - softmax(z)), c / N = 1
    want = torch.tensor([[2 / 3, -1 / 3, -1 / 3], [2 / 5, -1 / 5, -1 / 5]])
    assert torch.allclose(logits.grad, want, atol=1e-6)
    stepped = (logits - 0.1 * logits.grad).detach()  # one descent step lowers both sampled tokens' log p
    assert (torch.log_softmax(stepped, -1)[:, 0] < torch.log_softmax(logits.detach(), -1)[:, 0]).all()
    # at temperature T the log p is of softmax(logits / T), the distribution the samples came from
    assert na.loss(torch.tensor([[math.log(9.0), 0.0]]), torch.tensor([0]), c=1.0, temperature=2.0).item() \
        == pytest.approx(math.log(3 / 4))
    empty = na.loss(torch.zeros(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.long), c=1.0)
    assert empty.item() == 0.0 and empty.requires_grad


def test_targets_are_the_tokens_the_masked_positions_predict():
    ids = torch.tensor([[5, 6, 7, 8], [5, 9, 0, 0]])
    mask = torch.tensor([[False, True, True, False], [True, False, False, False]])
    assert na.sampled_targets(ids, mask).tolist() == [7, 8, 9]


@pytest.mark.parametrize("options, message", [
    ({"c": 0}, "negative-advantage.c must be a finite number > 0"),
    ({"c": -1.0}, "negative-advantage.c must be a finite number > 0"),
    ({"temperature": float("inf")}, "negative-advantage.temperature must be a finite number > 0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
])
def test_bad_options_are_refused_before_anything_loads(options, message):
    with pytest.raises(ConfigError, match=message):
        objective_config("negative-advantage", options)


def test_the_row_samples_from_the_student_on_the_curated_prompts_and_needs_no_teacher():
    row = OBJECTIVES["negative-advantage"]
    assert row.data == "curated" and row.on_policy and not row.needs_logprobs
    assert objective_config("negative-advantage", {}).c == 1.0


def examples():
    return [TrainExample(prompt=[{"role": "user", "content": f"What is {i} + 1?"}],
                         completion=[{"role": "assistant", "content": f"Answer: {i + 1}"}],
                         meta={"problem_id": f"p{i}"}) for i in range(4)]


def test_one_step_on_a_tiny_model_lowers_the_log_prob_of_what_it_sampled(tmp_path, tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = []
    original = na._trainer_class

    def spying():
        class Spy(original()):
            def compute_loss(self, model, inputs, *args, **kwargs):
                seen.append({k: v.detach().clone() for k, v in inputs.items()})
                return super().compute_loss(model, inputs, *args, **kwargs)
        return Spy
    monkeypatch.setattr(na, "_trainer_class", spying)
    data = tmp_path / "train.jsonl"
    io.write_jsonl(data, examples())
    cfg = TrainConfig(student=str(tiny_model_dir), method="negative-advantage",
                      objective={"c": 2.0, "max_new_tokens": 6}, max_steps=1, batch_size=4, learning_rate=1e-3,
                      warmup_ratio=0.0, logging_steps=1, dtype="float32", device="cpu", max_length=128)
    m = run_objective(cfg, data, tmp_path / "out")
    out = m["outputs"]
    assert m["method"] == "negative-advantage" and out["advantage"] == -2.0 and out["steps"] == 1
    assert out["on_policy_seqs"] == 4 and out["cached_seqs"] == 0  # every sequence is the student's own sample
    (batch,) = seen
    targets = na.sampled_targets(batch["input_ids"], batch["loss_mask"])
    assert len(targets) == out["on_policy_tokens"] > 0
    assert out["tokens_trained"] == int(batch["attention_mask"].sum())  # the sampled rows, not the loader's batch

    def mean_logp(model_dir):
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return na.loss(logits[batch["loss_mask"]], targets, c=1.0).item()

    before, after = mean_logp(tiny_model_dir), mean_logp(tmp_path / "out" / "model")
    row = json.loads((tmp_path / "out" / "loss.jsonl").read_text().splitlines()[0])
    assert row["loss"] == pytest.approx(2.0 * before, rel=1e-4)  # the logged loss: c x mean log p before the step
    assert row["sampled_logp"] == pytest.approx(before, rel=1e-4)
    assert after < before  # the step pushed the student's own samples down
