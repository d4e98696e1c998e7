"""Each switch through the pipeline, problems to pairs, with the scripted teacher serving as the
student too (``generate.probe.model: teacher``): survivors and pairs are known in advance."""

from __future__ import annotations

import json

import pytest

from reasondistill import io, pipeline
from reasondistill.backends import BACKENDS
from reasondistill.config import load_recipe
from reasondistill.layout import Layout
from reasondistill.prompts import student_messages
from reasondistill.records import PreferenceExample, Problem, Trace, TrainExample
from tests.unit.generate.scripted import PROBLEMS


@pytest.fixture()
def run_until_pairs(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, "scripted", "tests.unit.generate.scripted:ScriptedBackend")
    source = tmp_path / "problems.jsonl"
    source.write_text("".join(json.dumps({"id": pid, "question": q, "answer": a}) + "\n" for pid, q, a in PROBLEMS))

    def run(*overrides: str) -> Layout:
        recipe = load_recipe("default", [
            f"problems.source={source}", "problems.n_train=null", "problems.n_eval=0", "problems.fields.id=id",
            "teacher.backend=scripted", "generate.samples=2", "generate.probe.model=teacher",
            "generate.probe.samples=2", f"generate.cache_dir={tmp_path / 'cache'}", "verify.verifier=math",
            "curate.max_per_problem=2", "train.method=dpo", *overrides])
        layout = Layout(tmp_path / "run")
        pipeline.run(recipe, layout.root, last="pairs")
        return layout
    return run


def manifest(layout, stage):
    return json.loads(layout.manifest(stage).read_text())


def test_ssb_through_pairs(run_until_pairs):
    layout = run_until_pairs("generate.hints=ssb")
    problems = {p.id: p for p in io.read_records(layout.train_problems, Problem)}
    assert manifest(layout, "probe")["outputs"]["n"] == 5  # the student answered every training problem
    traces = io.read_records(layout.traces, Trace)
    # probe (greedy + 2 sampled, plain): p1 12,12,12; p2 13,14,14; p3 13,14,13 -> hints; p0 right; p4 never stated one
    assert {t.problem_id: t.meta["wrong_answer"] for t in traces if t.meta.get("hint") == "ssb"} == {
        "p1": "12", "p2": "14", "p3": "14"}
    assert manifest(layout, "generate")["outputs"]["ssb"] == {"problems_probed": 5, "with_wrong_answer": 3,
                                                              "hinted_traces": 6}
    assert manifest(layout, "generate")["config"]["generate"]["hints"] == "ssb"
    train = io.read_records(layout.curated, TrainExample)
    assert sorted(e.meta["trace_id"] for e in train) == [
        "p0/scripted/s0", "p0/scripted/s1", "p1/scripted/h0", "p1/scripted/h1", "p2/scripted/h0",
        "p2/scripted/h1", "p3/scripted/h0", "p3/scripted/h1", "p4/scripted/s0"]
    for ex in train:  # the student trains on the question alone: the hint never leaks
        assert ex.prompt == student_messages(problems[ex.meta["problem_id"]])
        assert "wrong answer" not in json.dumps(ex.prompt) and "correct answer" not in json.dumps(ex.prompt)
    assert all(ex.completion[0]["content"].startswith("ssb ") for ex in train if ex.meta["hinted"])
    (pair,) = io.read_records(layout.pairs, PreferenceExample)  # p4: right at sample 0, no answer at 1
    assert (pair.meta["chosen_trace_id"], pair.meta["rejected_trace_id"]) == ("p4/scripted/s0", "p4/scripted/s1")
    assert not layout.student_traces.exists()


def test_tailored_through_pairs(run_until_pairs):
    layout = run_until_pairs("generate.tailored=true")
    out = manifest(layout, "generate")["outputs"]
    # probe pass rates: p0 1, p1 0, p2 0, p3 2/3, p4 1/3 -> p1, p2, p4 fail (below 0.5), all three corrected
    assert out["tailored"] == {"problems_evaluated": 5, "failed": 3, "traces": 3, "traces_correct": 3,
                               "corrected": 3}
    assert manifest(layout, "generate")["config"]["generate"]["tailored"] is True
    students = io.read_records(layout.student_traces, Trace)
    # the default recipe does not rationalize, so each correction is sample 2, after the 2 plain ones
    assert sorted((s.id, s.meta["corrections"]) for s in students) == [
        ("p1/student/w0", ["p1/scripted/h2"]), ("p2/student/w1", ["p2/scripted/h2"]),
        ("p4/student/w1", ["p4/scripted/h2"])]
    kept = {e.meta["trace_id"] for e in io.read_records(layout.curated, TrainExample)}
    assert {"p1/scripted/h2", "p2/scripted/h2", "p4/scripted/h2"} <= kept  # corrections reach the curated set
    pairs = io.read_records(layout.pairs, PreferenceExample)
    mine = [p for p in pairs if p.meta.get("source") == "tailored"]
    assert sorted((p.meta["chosen_trace_id"], p.meta["rejected_trace_id"], p.rejected[0]["content"]) for p in mine) == [
        ("p1/scripted/h2", "p1/student/w0", "plain p1 0: add them.\nAnswer: 12"),
        ("p2/scripted/h2", "p2/student/w1", "plain p2 1: add them.\nAnswer: 14"),
        ("p4/scripted/h2", "p4/student/w1", "I am not sure how to add these.")]
    assert all(p.chosen[0]["content"].startswith("tailored ") for p in mine)
    problems = {p.id: p for p in io.read_records(layout.train_problems, Problem)}
    assert all(p.prompt == student_messages(problems[p.meta["problem_id"]]) for p in pairs)
    counts = manifest(layout, "pairs")["outputs"]["counts"]
    # the teacher's own pairs: p1 and p2 (correction vs 2 wrong plain samples), p4 (s0 and the correction vs
    # s1), p3 (s0 vs s1); p0 has no negative
    assert counts["tailored_pairs"] == 3 and counts["pairs"] == 3 + 2 + 2 + 2 + 1
    assert manifest(layout, "pairs")["config"]["tailored"] is True
