"""The probe stage: train.student answers the training problems (greedy + sampled) through the
evaluation runner; a finished probe is recognised without loading the model."""

from __future__ import annotations

from reasondistill import io
from reasondistill.backends import BackendPool
from reasondistill.config import GenerateConfig, ProbeConfig, BackendConfig, TrainConfig
from reasondistill.evaluate import probe
from reasondistill.layout import Layout
from reasondistill.records import EvalSample, Problem
from tests.helpers import recipe


def test_the_student_answers_every_training_problem_and_a_rerun_loads_nothing(tmp_path, tiny_model_dir,
                                                                               monkeypatch):
    layout = Layout(tmp_path / "run")
    io.write_jsonl(layout.train_problems, [Problem(f"p{i}", "t", f"What is {i} + 1?", str(i + 1)) for i in range(3)])
    r = recipe(train=TrainConfig(student=str(tiny_model_dir)),
               generate=GenerateConfig(hints="ssb", cache_dir=str(tmp_path / "cache"),
                                       probe=ProbeConfig(samples=2, max_new_tokens=4, dtype="float32", device="cpu")))
    assert probe.backend_config(r) == BackendConfig(backend="transformers", model=str(tiny_model_dir),
                                                    dtype="float32", device="cpu", batch_size=32)
    with BackendPool() as pool:
        m = probe.run(r, layout, pool=pool)
        assert not pool._open  # the student is released before the teacher generates
    samples = io.read_records(layout.probe_samples, EvalSample)
    assert sorted((s.problem_id, s.sample_idx) for s in samples) == [(f"p{i}", j) for i in range(3) for j in range(3)]
    assert m["outputs"]["calls"] == 9 and not m["this_run"]["skipped"]

    def no_load(*a, **k):
        raise AssertionError("a finished probe must not load the student")

    monkeypatch.setattr(BackendPool, "get", no_load)
    assert probe.run(r, layout)["this_run"]["skipped"]
    # generate.probe.model=teacher: the teacher answers (self-hinting, as in SSB)
    teacher = recipe(generate=GenerateConfig(tailored=True, probe=ProbeConfig(model="teacher")))
    assert probe.backend_config(teacher) is teacher.teacher
