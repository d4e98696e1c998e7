"""Every loss of the table trains in both offline KD (sparse teacher) and on-policy GKD (live teacher)."""

import json
import math

import pytest
import torch
from rl_tiny_models import one_thread, small_tokenizer, tiny_llama  # noqa: F401

from reasondistill import io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import base, gkd, kd, objective_config, run_objective
from reasondistill.train.gkd_config import GKDObjectiveConfig
from reasondistill.train.kd_config import KDConfig
from reasondistill.train.losses import LOSSES, get_loss
from reasondistill.train.losses.base import SparseTeacher

pytestmark = pytest.mark.usefixtures("one_thread")

K = 4


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Student and a sharper teacher over a ~350-token vocabulary (cheap logits)."""
    tok = small_tokenizer()
    root = tmp_path_factory.mktemp("loss-table")
    return tok, tiny_llama(root / "student", tok, seed=0), tiny_llama(root / "teacher", tok, seed=1, init_range=0.3)


def examples(n=4):
    return [TrainExample(prompt=[{"role": "user", "content": f"{i} + 2 ="}],
                         completion=[{"role": "assistant", "content": f"{i} + 2 = {i + 2}\nAnswer: {i + 2}"}])
            for i in range(n)]


def cfg(student, **kw):
    return TrainConfig(**{"student": str(student), "max_steps": 1, "batch_size": 2, "learning_rate": 1e-2,
                          "logging_steps": 1, "warmup_ratio": 0.0, "dtype": "float32", "device": "cpu",
                          "max_length": 64, **kw})


def options(name):
    return {"beta": 0.3} if name == "jsd" else {"alpha": 0.2} if name.startswith("skew") else {}


def kd_batch(tok, n_vocab):
    """Two curated examples with a sparse teacher (k ids + tail) at every trained position."""
    gen = torch.Generator().manual_seed(0)
    features = []
    for ex in examples(2):
        prompt_ids, full_ids = base.encode_pair(tok, ex.prompt, ex.completion, path="t", line=1)
        f = base.supervised(prompt_ids, full_ids, 64)
        n, length = len(prompt_ids), len(f["input_ids"])
        mask = torch.zeros(length, dtype=torch.bool)
        mask[n - 1:length - 1] = True  # every position that predicts a completion token
        buckets = torch.log_softmax(torch.randn(length, K + 1, generator=gen) * 2, -1)
        features.append({**f, "teacher_ids": torch.stack([torch.randperm(n_vocab, generator=gen)[:K]
                                                          for _ in range(length)]),
                         "teacher_logprobs": buckets[:, :K], "teacher_tail": buckets[:, K], "kd_mask": mask})
    return kd.Collator(tok.pad_token_id)(features)


@pytest.mark.parametrize("name", list(LOSSES))
def test_offline_kd_step_with_each_loss(name, small, tmp_path):
    tok, student_dir, _ = small
    model = models.load_model(str(student_dir), dtype="float32", device="cpu").train()
    batch = kd_batch(tok, len(tok))
    kd_cfg = KDConfig(loss=name, top_k=K, **options(name))
    trainer = kd._trainer_class()(model=model, args=base.training_args(cfg(student_dir), tmp_path, False, "cpu"),
                                  kd_cfg=kd_cfg)
    loss = trainer.compute_loss(model, dict(batch))
    # what the table's function gives on the student's logits at the teacher's positions
    sel = batch["kd_mask"]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[sel][None]
        teacher = SparseTeacher(batch["teacher_ids"][sel][None], batch["teacher_logprobs"][sel][None],
                                batch["teacher_tail"][sel][None])
        want = get_loss(name)(logits, teacher, torch.ones(logits.shape[:2], dtype=torch.bool), 1.0, **options(name))
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(want.item(), rel=1e-4)
    loss.backward()
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(LOSSES))
def test_gkd_loss_is_the_tables_with_its_options(name, small, tmp_path):
    tok, student_dir, teacher_dir = small
    student, teacher = (models.load_model(str(d), dtype="float32", device="cpu") for d in (student_dir, teacher_dir))
    student.train()
    g = GKDObjectiveConfig(teacher=str(teacher_dir), loss=name, temperature=1.5, **options(name))
    trainer = gkd._trainer_class()(model=student, args=base.training_args(cfg(student_dir), tmp_path, False, "cpu"),
                                   processing_class=tok, teacher=teacher, gkd_cfg=g, stop_ids=[tok.eos_token_id],
                                   shared_vocab=len(tok), max_length=64)
    features, _ = gkd.tokenize(examples(2), tok, 64)
    batch = trainer.assemble([f["prompt"] for f in features], [f["completion"] for f in features], tok.pad_token_id)
    loss = trainer.compute_loss(student, batch)
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    want = get_loss(name)(s, t, batch["loss_mask"], 1.5, **options(name))
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(want.item(), rel=1e-4)
    loss.backward()
    assert student.get_input_embeddings().weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(LOSSES))
def test_one_gkd_step_from_a_recipe_with_each_loss(name, small, tmp_path):
    """The ``loss`` option reaches the trainer through the recipe path (``train.objective``) and the
    manifest; one optimizer step on a half on-policy batch moves the student."""
    tok, student_dir, teacher_dir = small
    path = tmp_path / "train.jsonl"
    io.write_jsonl(path, examples())
    train_cfg = cfg(student_dir, method="gkd", objective={"teacher": str(teacher_dir), "loss": name, "lmbda": 0.5,
                                                          "max_new_tokens": 4, **options(name)})
    m = run_objective(train_cfg, path, tmp_path / "out")
    assert m["config"]["gkd"]["loss"] == name and m["outputs"]["steps"] == 1
    row = json.loads((tmp_path / "out" / "loss.jsonl").read_text().splitlines()[0])
    assert math.isfinite(row["loss"]) and row["grad_norm"] > 0


def test_gkd_loss_option_is_checked_against_the_table():
    with pytest.raises(ConfigError, match="gkd.loss = 'kl' is not one of: forward_kl"):
        objective_config("gkd", {"teacher": "t", "loss": "kl"})
    with pytest.raises(ConfigError, match=r"gkd.alpha must be in \[0, 1\)"):
        objective_config("gkd", {"teacher": "t", "loss": "skew_reverse_kl", "alpha": 1.0})
    assert objective_config("gkd", {"teacher": "t"}).loss == "jsd"


def test_loss_options_reach_the_named_loss_and_are_refused_elsewhere():
    """``loss_options`` carries any loss's own options; a plain key (``beta``) given there too is refused."""
    assert KDConfig(loss="jsd", beta=0.2).loss_values() == {"beta": 0.2, "alpha": 0.1}
    with pytest.raises(ConfigError, match="kd.loss_options.beta: set kd.beta instead"):
        KDConfig(loss="jsd", loss_options={"beta": 0.2})
    with pytest.raises(ConfigError, match=r"gkd.loss_options: 'gamma' is not an option of any loss \(options: alpha, beta\)"):
        objective_config("gkd", {"teacher": "t", "loss_options": {"gamma": 1}})
    with pytest.raises(ConfigError, match="gkd.beta must be a number, got 'high'"):
        GKDObjectiveConfig(teacher="t", loss="tv", beta="high")  # built by hand: no YAML coercion first


def test_a_train_stage_recorded_before_loss_options_is_the_same_stage(tmp_path):
    """Finished KD/GKD stages from before ``loss_options`` existed are not retrained."""
    import dataclasses

    import reasondistill.config  # noqa: F401  (declares the later fields)

    data = tmp_path / "train.jsonl"
    data.write_text('{"id": "p1"}\n')
    out = tmp_path / "train"
    new = {"gkd": dataclasses.asdict(GKDObjectiveConfig(teacher="t", beta=0.3))}
    old = {"gkd": {k: v for k, v in new["gkd"].items() if k != "loss_options"}}

    def body():
        io.write_jsonl(out / "loss.jsonl", [{"loss": 1.0}])
        return {"files": ["loss.jsonl"]}
    io.cached_stage(out, stage="train", config=old, inputs=[data], body=body)
    inputs = io.hash_inputs([data], out)
    assert io.completed_manifest(out, new, inputs) is not None
    changed = {"gkd": {**new["gkd"], "loss_options": {"gamma": 1}}}
    assert io.completed_manifest(out, changed, inputs) is None
