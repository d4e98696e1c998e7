"""Token-level objectives with a teacher behind a backend (``objective.teacher`` as a teacher
config): offline KD's store filled by scoring, GKD's live targets through ``Backend.score``."""

import json

import pytest
import torch

from reasondistill import io, models
from reasondistill.backends.selftest import TeacherNotDeterministic
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.logprobs import LogprobReader
from reasondistill.records import TrainExample
from reasondistill.scoring import encode
from reasondistill.train import kd, objective_config, run_objective
from reasondistill.train.kd_config import KDConfig
from tests.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return models.load_tokenizer(str(tiny_model_dir))


@pytest.fixture(autouse=True)
def score_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDISTILL_CACHE", str(tmp_path / "cache"))  # the student is a folder: no model cache
    return tmp_path / "cache" / "scores"


def examples(n=6):
    return [TrainExample(prompt=[{"role": "user", "content": f"What is {i} + {i % 3}?"}],
                         completion=[{"role": "assistant", "content": f"{i} + {i % 3} = {i + i % 3}\nAnswer: "
                                                                       f"{i + i % 3}"}],
                         meta={"problem_id": f"p{i}", "trace_id": f"p{i}/t/s0"}) for i in range(n)]


def train_cfg(student, **kw):
    return TrainConfig(**{**dict(student=str(student), max_steps=4, batch_size=2, learning_rate=3e-3, logging_steps=2,
                                 warmup_ratio=0.0, dtype="float32", device="cpu"), **kw})


def served(server, **options):
    return {"backend": "openai", "model": "fake-model",
            "options": {"base_url": server.url, "endpoint": "completions", "max_retries": 0, **options}}


def test_kd_scores_the_traces_through_a_server_and_trains(tmp_path, tiny_model_dir, tok, score_cache):
    io.write_jsonl(tmp_path / "train.jsonl", examples())
    with FakeOpenAI(tokenizer=tok) as server:
        m = kd.run(train_cfg(tiny_model_dir, max_steps=2, logging_steps=1), KDConfig(top_k=4, teacher=served(server)),
                   tmp_path / "train.jsonl",
                   tmp_path / "out", context=None)
        first = len(server.log)
        # another run against the same teacher: its self-test asks the server again, the traces come from the cache
        m2 = kd.run(train_cfg(tiny_model_dir, max_steps=1), KDConfig(top_k=4, teacher=served(server), loss="jsd"),
                    tmp_path / "train.jsonl", tmp_path / "out2", context=None)
        second = len(server.log) - first
    out = m["outputs"]
    assert out["teacher_selftest"]["passed"] and out["teacher_selftest"]["max_diff"] == 0.0
    assert out["teacher_scored"] == 6 and out["teacher_scored_cached"] == 0 and out["steps"] == 2
    assert first == 4 * 3 + 6  # self-test (4 texts, 3 ways) + one request per trace
    assert second == 4 * 3 and m2["outputs"]["teacher_scored_cached"] == 6
    assert len(list(score_cache.glob("*.jsonl"))) == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["kd_loss"] > 0 for r in rows)
    # the store holds the server's view of exactly the tokens the student trains on (end of turn included)
    reader = LogprobReader(tmp_path / "out" / kd.TEACHER_STORE)
    assert reader.k == 4 and len(reader) == 6
    n_completion = 0
    for ex in examples():
        p_ids, full = encode(tok, ex.prompt, ex.completion)
        assert reader.get(ex.meta["trace_id"])[0].tolist() == full[len(p_ids):]
        n_completion += len(full) - len(p_ids)
    assert out["n_kd_tokens"] == n_completion


def test_kd_refuses_a_noisy_server_before_training(tmp_path, tiny_model_dir, tok, monkeypatch):
    io.write_jsonl(tmp_path / "train.jsonl", examples())

    def boom(*a, **k):
        raise AssertionError("the student was loaded")
    monkeypatch.setattr(models, "load_model", boom)
    with FakeOpenAI(tokenizer=tok, score_noise=0.1) as server:
        with pytest.raises(TeacherNotDeterministic, match=r"differing by up to \d\.\d+ \(> score_tolerance 0\.001\)"):
            kd.run(train_cfg(tiny_model_dir), KDConfig(top_k=4, teacher=served(server)), tmp_path / "train.jsonl",
                   tmp_path / "out", context=None)
        cfg = KDConfig(top_k=4, teacher=served(server), score_tolerance=10.0)  # tolerated: trains
    assert cfg.score_tolerance == 10.0


def test_kd_with_an_in_process_transformers_teacher_via_run_objective(tmp_path, tiny_model_dir):
    io.write_jsonl(tmp_path / "train.jsonl", examples(4))
    teacher = {"backend": "transformers", "model": str(tiny_model_dir), "dtype": "float32", "device": "cpu"}
    m = run_objective(train_cfg(tiny_model_dir, method="kd", max_steps=2,
                                objective={"top_k": 3, "teacher": teacher}),
                      tmp_path / "train.jsonl", tmp_path / "out")  # no --logprobs: the teacher fills the store
    assert m["outputs"]["teacher"].startswith("transformers:") and m["outputs"]["teacher_selftest"]["passed"]
    assert m["outputs"]["steps"] == 2


@pytest.mark.parametrize("teacher, match", [
    ({"model": "x"}, "kd.teacher as a backend config needs 'backend'"),
    ({"backend": "dummy"}, "kd.teacher.backend = 'dummy' cannot score"),
    ({"backend": "openai", "options": {"endpoint": "nope"}}, "endpoint must be one of"),
    ({"backend": "openai", "modle": "x"}, "unknown recipe key 'kd.teacher.modle'"),
])
def test_bad_teacher_configs_are_config_errors(teacher, match):
    with pytest.raises(ConfigError, match=match):
        objective_config("kd", {"teacher": teacher})


def test_score_tolerance_must_be_a_number():
    with pytest.raises(ConfigError, match="kd.score_tolerance must be a number >= 0"):
        KDConfig(score_tolerance=-1)


def test_gkd_with_a_served_teacher_config_scores_every_batch(tmp_path, tiny_model_dir, tok):
    from reasondistill.train import gkd
    from reasondistill.train.gkd_config import GKDObjectiveConfig

    io.write_jsonl(tmp_path / "train.jsonl", examples(4))
    with FakeOpenAI(tokenizer=tok) as server:
        cfg = GKDObjectiveConfig(teacher=served(server, score_ids=True), teacher_top_k=4, lmbda=0.5, max_new_tokens=6,
                                 loss="forward_kl")
        m = gkd.run(train_cfg(tiny_model_dir, max_steps=2, logging_steps=1, max_length=128), cfg,
                    tmp_path / "train.jsonl", tmp_path / "out")
        training_requests = [r for r in server.log[4 * 3:]]
    out = m["outputs"]
    assert out["teacher_selftest"]["passed"] and out["teacher"].startswith("openai:completions:fake-model@")
    assert len(training_requests) == 2 * 2  # every sequence of both steps (batch 2) scored once
    # the student's exact ids went to the server (score_ids), so every sampled token has a target
    assert all(r.body["echo"] and r.body["logprobs"] == 4 and isinstance(r.body["prompt"], list)
               for r in training_requests)
    total = out["on_policy_tokens"] + out["cached_tokens"]
    assert out["on_policy_seqs"] > 0 and out["teacher_uncovered_tokens"] == 0
    assert out["teacher_covered_tokens"] == total
    rows = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0 < r["loss"] < 50 for r in rows)


def test_gkd_served_targets_sit_on_the_student_positions(tmp_path, tiny_model_dir, tok):
    """lmbda = 0 with an in-process transformers teacher config equal to a peaked student: every target
    is the student's own distribution (top-k + tail), so a forward KL starts at (almost) zero."""
    from transformers import LlamaForCausalLM

    from reasondistill.train import gkd
    from reasondistill.train.gkd_config import GKDObjectiveConfig

    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(30.0)  # peaked: a target one position off costs nats
    model.save_pretrained(tmp_path / "sharp")
    tok.save_pretrained(tmp_path / "sharp")
    io.write_jsonl(tmp_path / "train.jsonl", examples(4))
    teacher = {"backend": "transformers", "model": str(tmp_path / "sharp"), "dtype": "float32", "device": "cpu"}
    cfg = GKDObjectiveConfig(teacher=teacher, teacher_top_k=8, lmbda=0.0, loss="forward_kl")
    m = gkd.run(train_cfg(tmp_path / "sharp", max_steps=1, logging_steps=1, learning_rate=1e-9, max_length=128), cfg,
                tmp_path / "train.jsonl", tmp_path / "out")
    out = m["outputs"]
    assert out["teacher_uncovered_tokens"] == 0 and out["teacher_covered_tokens"] == out["cached_tokens"] > 0
    row = json.loads((tmp_path / "out" / "loss.jsonl").read_text().splitlines()[0])
    assert row["loss"] < 1e-3  # misplaced by one position, a random model's KL would be ~10 nats


def test_gkd_teacher_config_validation():
    from reasondistill.train.gkd_config import GKDObjectiveConfig

    with pytest.raises(ConfigError, match="gkd.teacher.backend = 'program' cannot score"):
        GKDObjectiveConfig(teacher={"backend": "program"})
    with pytest.raises(ConfigError, match="gkd.teacher_top_k must be an integer >= 1"):
        GKDObjectiveConfig(teacher={"backend": "openai", "model": "m"}, teacher_top_k=0)
    cfg = objective_config("gkd", {"teacher": {"backend": "openai", "model": "m"}, "score_tolerance": 0.01})
    assert cfg.teacher["backend"] == "openai" and cfg.score_tolerance == 0.01


def test_cli_train_kd_with_a_teacher_config_override(tmp_path, tiny_model_dir, capsys):
    from reasondistill.cli import main

    io.write_jsonl(tmp_path / "train.jsonl", examples(2))
    rc = main(["train", "kd", "--data", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "out"),
               f"train.student={tiny_model_dir}", "train.max_steps=1", "train.batch_size=2", "train.device=cpu",
               "train.dtype=float32", "train.objective.top_k=2",
               f"train.objective.teacher={{backend: transformers, model: '{tiny_model_dir}', device: cpu}}"])
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 1
    assert (tmp_path / "out" / kd.TEACHER_STORE / "index.json").exists()


def test_gkd_with_a_gguf_teacher_on_llamacpp(tmp_path, tiny_model_dir, tok, monkeypatch):
    """Any backend that scores is a live teacher: llama.cpp (its fake engine, tokenizing as the student
    does) scores every sequence through the same contract as a server."""
    from reasondistill.train import gkd
    from reasondistill.train.gkd_config import GKDObjectiveConfig
    from tests import fake_llama_cpp

    fake_llama_cpp.install(monkeypatch)
    fake_llama_cpp.mirror(monkeypatch, tok)
    (tmp_path / "teacher.gguf").write_bytes(b"GGUF toy")
    io.write_jsonl(tmp_path / "train.jsonl", examples(4))
    teacher = {"backend": "llamacpp", "model": str(tmp_path / "teacher.gguf"), "options": {"n_ctx": 512}}
    cfg = GKDObjectiveConfig(teacher=teacher, teacher_top_k=4, lmbda=0.5, max_new_tokens=6, loss="forward_kl")
    m = gkd.run(train_cfg(tiny_model_dir, max_steps=2, logging_steps=1, max_length=128), cfg,
                tmp_path / "train.jsonl", tmp_path / "out")
    out = m["outputs"]
    assert out["teacher_selftest"]["passed"] and out["teacher"].startswith("llamacpp:teacher.gguf:")
    # the student's exact ids are scored, so every trained token has a target
    assert out["on_policy_seqs"] > 0 and out["teacher_uncovered_tokens"] == 0
    assert out["teacher_covered_tokens"] == out["on_policy_tokens"] + out["cached_tokens"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0 < r["loss"] < 50 for r in rows)
    assert fake_llama_cpp.Llama.instances[-1].closed
