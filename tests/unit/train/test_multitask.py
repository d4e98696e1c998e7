import json

import pytest
import torch

from rl_tiny_models import one_thread, small_tokenizer, tiny_llama  # noqa: F401

from reasondistill import io
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import multitask
from reasondistill.train.multitask import MultiTaskConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def examples(n=12):
    out = []
    for i in range(n):
        a, b = i % 7, (3 * i) % 5
        out.append(TrainExample(prompt=[{"role": "user", "content": f"{a} + {b} ="}],
                                completion=[{"role": "assistant",
                                             "content": f"We add {a} and {b}.\n{a} + {b} = {a + b}\nAnswer: {a + b}"}]))
    return out


def test_build_tasks_prefixes_prompts_and_keeps_only_the_answer_line_for_labels():
    no_answer = TrainExample(prompt=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}],
                             completion=[{"role": "assistant", "content": "no final line here"}])
    rows = multitask.build_tasks([examples(1)[0], no_answer], MultiTaskConfig())
    label_prompt, label_completion = rows[0]["label"]
    assert label_prompt == [{"role": "user", "content": "[label] 0 + 0 ="}]
    assert label_completion == [{"role": "assistant", "content": "Answer: 0"}]
    rat_prompt, rat_completion = rows[0]["rationale"]
    assert rat_prompt[-1]["content"] == "[rationale] 0 + 0 ="
    assert rat_completion[0]["content"].startswith("We add 0 and 0.")
    assert rows[1]["label"] is None
    assert rows[1]["rationale"][0][0] == {"role": "system", "content": "be brief"}  # only the user turn is prefixed


def test_loss_is_the_weighted_mix_of_per_task_token_means():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 11)
    labels = torch.randint(0, 11, (4, 6))
    labels[:, :2] = -100
    labels[3, 4:] = -100  # a shorter rationale
    task = torch.tensor([0, 1, 0, 1])

    def token_mean(rows):
        lp = torch.log_softmax(logits[rows, :-1], -1)
        tgt = labels[rows, 1:]
        m = tgt != -100
        nll = -lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (nll * m).sum() / m.sum()

    want_label, want_rat = token_mean([0, 2]), token_mean([1, 3])
    for w in (0.0, 0.3, 1.0):
        loss, parts = multitask.multitask_loss(logits, labels, task, w)
        assert parts["label"] == pytest.approx(want_label.item(), rel=1e-5)
        assert parts["rationale"] == pytest.approx(want_rat.item(), rel=1e-5)
        assert loss.item() == pytest.approx(((1 - w) * want_label + w * want_rat).item(), rel=1e-5)
    # a batch without label rows adds only the weighted rationale term
    loss, parts = multitask.multitask_loss(logits[[1, 3]], labels[[1, 3]], task[[1, 3]], 0.3)
    assert set(parts) == {"rationale"} and loss.item() == pytest.approx(0.3 * want_rat.item(), rel=1e-5)


def test_collator_pairs_both_tasks_and_masks_prompts(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = multitask.encode_tasks(tok, multitask.build_tasks(examples(2), MultiTaskConfig()), max_length=512)
    batch = multitask.TaskCollator(tok.pad_token_id)(enc)
    assert batch["task"].tolist() == [0, 1, 0, 1]
    label_targets = batch["labels"][0][batch["labels"][0] != -100]
    assert tok.decode(label_targets) == "Answer: 0<|im_end|>\n"
    assert batch["attention_mask"].sum(1)[1] > batch["attention_mask"].sum(1)[0]  # rationale is longer
    # a task weighted 0 is not tokenised at all
    only_labels = multitask.encode_tasks(tok, multitask.build_tasks(examples(2), MultiTaskConfig()), 512, ("label",))
    assert multitask.TaskCollator(tok.pad_token_id)(only_labels)["task"].tolist() == [0, 0]


def test_multitask_lowers_both_losses_and_saves(tmp_path):
    student = tiny_llama(tmp_path / "student", small_tokenizer())  # small vocabulary: cheap steps
    path = tmp_path / "train.jsonl"
    io.write_jsonl(path, examples())
    cfg = TrainConfig(student=str(student), max_steps=12, batch_size=4, learning_rate=3e-3, logging_steps=4,
                      dtype="float32", device="cpu")
    m = multitask.run(cfg, MultiTaskConfig(rationale_weight=0.5), path, tmp_path / "out")
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(log) == 3
    for key in ("loss", "label_loss", "rationale_loss"):
        assert log[-1][key] < log[0][key], (key, [h[key] for h in log])
    out = m["outputs"]
    assert out["method"] == "multitask" and out["n_label"] == 12 and out["n_rationale"] == 12
    assert out["label_prefix"] == "[label] "
    pre = out["preflight"]  # both tasks weighted: their first-batch losses were compared
    assert any("loss terms" in line and "label=" in line for line in pre["notes"] + pre["warnings"])
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"rationale_weight": 1.5}, "rationale_weight must be in"),
    ({"label_prefix": "[x] ", "rationale_prefix": "[x]"}, "must differ"),
    ({"label_prefix": " "}, "non-empty"),
])
def test_bad_multitask_config_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MultiTaskConfig(**kwargs)


def test_multitask_student_is_evaluated_under_its_task_prefix(tmp_path):
    """A multi-task student sees '[rationale] ' (or eval.task=label: '[label] ') before the question at
    evaluation, as in training; other students see the plain prompt."""
    from reasondistill import io
    from reasondistill.config import load_recipe
    from reasondistill.evaluate.runner import evaluate as eval_run
    from reasondistill.records import Problem
    from reasondistill.backends.dummy import DummyBackend
    from reasondistill.registry import load
    from reasondistill.train import objective, objective_config

    def student_task_prefix(recipe):
        """What evaluation puts before the question: the objective's prompt hook, for eval.task."""
        hook = objective(recipe.train.method).prompts
        if hook is None:
            return None
        return load(hook)(objective_config(recipe.train.method, recipe.train.objective))[recipe.eval.task]

    assert student_task_prefix(load_recipe("default", [])) is None
    recipe = load_recipe("default", ["train.method=multitask", "train.objective.label_prefix=<L>"])
    assert student_task_prefix(recipe) == "[rationale] "
    assert student_task_prefix(load_recipe("default", ["train.method=multitask", "eval.task=label",
                                                       "train.objective.label_prefix=<L>"])) == "<L>"

    seen = []

    class Recording(DummyBackend):
        def complete(self, requests, sampling):
            seen.extend(r.messages for r in requests)
            return super().complete(requests, sampling)

    path = tmp_path / "eval.jsonl"
    io.write_jsonl(path, [Problem("p0", "t", "1 + 1 =", "2")])
    eval_run(recipe.eval, recipe.verify, Recording(accuracy=1.0), path, tmp_path / "ev", model_name="m",
             task_prefix="[rationale] ")
    assert seen[-1][-1]["content"].startswith("[rationale] ") and "1 + 1 =" in seen[-1][-1]["content"]
    m = eval_run(recipe.eval, recipe.verify, Recording(accuracy=1.0), path, tmp_path / "plain", model_name="m")
    assert not seen[-1][-1]["content"].startswith("[")
    assert m["config"].get("task_prefix") is None
