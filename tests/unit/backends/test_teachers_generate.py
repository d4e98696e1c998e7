import json

from reasondistill import io
from reasondistill import generate
from reasondistill.backends import BackendPool
from reasondistill.backends.dummy import DummyBackend
from reasondistill.config import GenerateConfig, BackendConfig, VerifyConfig
from reasondistill.records import Problem, Trace
from tests.helpers import recipe, stage_layout


def run(tcfg, gen, verify, problems, out, teacher=None):
    """The generate stage alone, with ``teacher`` (when given) served for ``tcfg``."""
    pool = BackendPool()
    if teacher is not None:
        pool.add(tcfg, teacher)
    with pool:
        return generate.run(recipe(teacher=tcfg, generate=gen, verify=verify),
                            stage_layout(out, "generate", train_problems=problems), pool=pool)


def write_problems(path, n=12):
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"What is {i} + 1?", str(i + 1)) for i in range(n)])
    return path


def test_generate_with_star_and_zero_calls_on_rerun(tmp_path):
    probs = write_problems(tmp_path / "problems.jsonl")
    gen = GenerateConfig(samples=2, rationalize=True, cache_dir=str(tmp_path / "cache"))
    tcfg = BackendConfig(backend="dummy")
    teacher = DummyBackend(accuracy=0.3)
    m = run(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen", teacher=teacher)
    traces = io.read_records(tmp_path / "gen" / "traces.jsonl", Trace)
    hinted = [t for t in traces if t.hinted]
    unsolved = {p for p in {t.problem_id for t in traces}
                if not any(t.answer_text == str(int(p[1:]) + 1) for t in traces if t.problem_id == p and not t.hinted)}
    assert {t.problem_id for t in hinted} == unsolved and unsolved  # STaR only for failed problems
    assert len(traces) == 12 * 2 + len(hinted)
    assert len({t.id for t in traces}) == len(traces)
    assert m["outputs"]["teacher_calls"] == teacher.calls == len(traces) and not m["this_run"]["skipped"]

    # unchanged re-run: the stage is skipped, no teacher call
    again = DummyBackend(accuracy=0.3)
    m2 = run(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen", teacher=again)
    assert again.calls == 0 and m2["this_run"]["skipped"]

    # same samples into a new folder: all served from the sample cache
    third = DummyBackend(accuracy=0.3)
    m3 = run(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen2", teacher=third)
    assert third.calls == 0 and m3["outputs"]["cached_teacher_calls"] == len(traces)
    assert (tmp_path / "gen2" / "traces.jsonl").read_text() == (tmp_path / "gen" / "traces.jsonl").read_text()


def test_more_samples_only_pays_for_new_ones(tmp_path):
    probs = write_problems(tmp_path / "problems.jsonl", n=16)
    cache = str(tmp_path / "cache")
    t1 = DummyBackend(accuracy=1.0)
    run(BackendConfig(backend="dummy"), GenerateConfig(samples=1, rationalize=False, cache_dir=cache),
        VerifyConfig(), probs, tmp_path / "a", teacher=t1)
    t2 = DummyBackend(accuracy=1.0)
    t2.batch_size = 16
    m = run(BackendConfig(backend="dummy"), GenerateConfig(samples=2, rationalize=False, cache_dir=cache),
            VerifyConfig(), probs, tmp_path / "b", teacher=t2)
    assert m["outputs"]["n_traces"] == 32
    assert m["outputs"]["teacher_calls"] == t2.calls == 16 and m["outputs"]["cached_teacher_calls"] == 16
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["stage"] == "generate" and manifest["inputs"]


def test_top_logprobs_go_to_the_compact_store(tmp_path, tiny_model_dir):
    from reasondistill.logprobs import LogprobReader

    probs = write_problems(tmp_path / "problems.jsonl", n=3)
    gen = GenerateConfig(samples=1, rationalize=False, max_new_tokens=6, top_logprobs=5,
                         cache_dir=str(tmp_path / "cache"))
    tcfg = BackendConfig(backend="transformers", model=str(tiny_model_dir), dtype="float32", device="cpu")
    m = run(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen")
    traces = io.read_records(tmp_path / "gen" / "traces.jsonl", Trace)
    assert all(t.logprobs is None for t in traces)  # kept out of the JSON traces
    reader = LogprobReader(tmp_path / "gen" / "logprobs")
    assert sorted(reader.trace_ids()) == sorted(t.id for t in traces)
    ids, top_ids, top_lp, tail = reader.get(traces[0].id)
    assert top_ids.shape == (traces[0].usage["completion_tokens"], 5)
    assert "logprobs/index.json" in m["outputs"]["files"]
