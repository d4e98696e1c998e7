"""Tailored learning: the problems the student fails go back to the teacher with its wrong solution;
the verified corrections and (wrong, corrected) pairs come out, with counts in the manifest."""

from __future__ import annotations

import dataclasses

import pytest

from reasondistill import generate, io
from reasondistill.backends import BackendPool
from reasondistill.config import GenerateConfig, PromptConfig, BackendConfig, VerifyConfig
from reasondistill.curate.run import example
from reasondistill.curate.tailored_pairs import tailored_pairs
from reasondistill.errors import InputError
from reasondistill.generate import tailored
from reasondistill.generate.student_answers import StudentAnswers
from reasondistill.prompts import student_messages, tailored_prompt
from reasondistill.records import PreferenceExample, Problem, Trace
from tests.helpers import recipe, stage_layout
from tests.unit.generate.scripted import PROBLEMS, ScriptedBackend
from tests.unit.generate.test_ssb import sample


def test_failed_problems_come_with_the_wrong_sample_to_show():
    problems = [Problem(x, "t", "q", "1") for x in "abcde"]
    answers = {
        "a": StudentAnswers("a", (sample("a", 0, True, "1"), sample("a", 1, False, "2"))),  # 1/2: not below 0.5
        "b": StudentAnswers("b", (sample("b", 0, False, "3"), sample("b", 1, False, "2"), sample("b", 2, False, "2"))),
        "c": StudentAnswers("c", (sample("c", 0, False, None, "no idea"), sample("c", 1, True, "1"),
                                  sample("c", 2, False, None, "still no idea"))),  # no stated answer: the first
        "d": StudentAnswers("d", ()),  # never probed
        "e": StudentAnswers("e", (sample("e", 0, False, None, "  "),)),  # failed, but nothing to show
    }
    assert [(p.id, w.sample_idx) for p, w in tailored.failed(problems, answers, 0.5)] == [("b", 1), ("c", 0)]
    assert [p.id for p, _ in tailored.failed(problems, answers, 0.6)] == ["a", "b", "c"]


def test_tailored_prompt_shows_the_students_solution_not_the_gold_answer():
    text = tailored_prompt(Problem("a", "t", "What is 2 + 2?", "4"), "2 + 2 = 5\nAnswer: 5", PromptConfig())
    assert text.startswith("What is 2 + 2?") and "2 + 2 = 5\nAnswer: 5" in text
    assert "4" not in text.replace("What is 2 + 2?", "")


def run_generate(tmp_path, teacher, **gen):
    problems = [Problem(pid, "hand", q, a) for pid, q, a in PROBLEMS]
    io.write_jsonl(tmp_path / "problems.jsonl", problems)
    tcfg = BackendConfig(backend="dummy")
    cfg = GenerateConfig(**{"samples": 2, "tailored": True, "cache_dir": str(tmp_path / "cache"), **gen})
    layout = stage_layout(tmp_path / "gen", "generate", train_problems=tmp_path / "problems.jsonl",
                          probe_samples=tmp_path / "probe.jsonl")
    with BackendPool() as pool:
        pool.add(tcfg, teacher)
        m = generate.run(recipe(teacher=tcfg, generate=cfg, verify=VerifyConfig()), layout, pool=pool)
    return m, io.read_records(layout.traces, Trace), io.read_records(layout.student_traces, Trace)


def test_generate_corrects_the_failed_problems_and_writes_the_students_traces(tmp_path):
    io.write_jsonl(tmp_path / "probe.jsonl", [
        sample("p0", 0, True, "10"),
        sample("p1", 0, False, "12", "1 + 10 = 12\nAnswer: 12"), sample("p1", 1, True, "11"),
        sample("p1", 2, False, "13"),  # 1/3 passed: failed; 12 and 13 tie, the first seen is shown
        sample("p3", 0, True, "13"), sample("p3", 1, False, "14"),  # 1/2: not failed
        sample("p4", 0, False, None, "I cannot do this."),  # failed with no stated answer: still shown
    ])
    teacher = ScriptedBackend()
    m, traces, students = run_generate(tmp_path, teacher, rationalize=False, tailored_samples=2)
    asked = {(pid, idx): text for pid, kind, idx, text in teacher.seen if kind == "tailored"}
    assert sorted(asked) == [("p1", 2), ("p1", 3), ("p4", 2), ("p4", 3)]  # after the 2 plain samples
    assert "1 + 10 = 12\nAnswer: 12" in asked[("p1", 2)] and "I cannot do this." in asked[("p4", 2)]
    assert not any("correct answer" in text for text in asked.values())
    fresh = [t for t in traces if t.meta.get("hint") == "tailored"]
    assert [t.id for t in fresh] == ["p1/scripted/h2", "p1/scripted/h3", "p4/scripted/h2", "p4/scripted/h3"]
    assert all(t.hinted for t in fresh)
    assert [t.meta["student_trace"] for t in fresh] == ["p1/student/w0"] * 2 + ["p4/student/w0"] * 2
    assert [t.meta["wrong_answer"] for t in fresh] == ["12", "12", None, None]
    assert [(s.id, s.teacher, s.answer_text, s.raw, s.meta["corrections"]) for s in students] == [
        ("p1/student/w0", "student", "12", "1 + 10 = 12\nAnswer: 12", ["p1/scripted/h2", "p1/scripted/h3"]),
        ("p4/student/w0", "student", "", "I cannot do this.", ["p4/scripted/h2", "p4/scripted/h3"])]
    assert m["outputs"]["tailored"] == {"problems_evaluated": 4, "failed": 2, "traces": 4, "traces_correct": 4,
                                        "corrected": 2}
    assert "student_traces.jsonl" in m["outputs"]["files"]


def test_tailored_samples_follow_the_star_ones(tmp_path):
    io.write_jsonl(tmp_path / "probe.jsonl", [sample("p2", 0, False, "13")])
    teacher = ScriptedBackend()
    m, traces, _ = run_generate(tmp_path, teacher, rationalize_samples=2)
    # p2's plain samples miss (x, y): STaR takes sample indices 2-3, the correction 4
    assert [(t.id, t.meta.get("hint")) for t in traces if t.hinted and t.problem_id == "p2"] == [
        ("p2/scripted/h2", None), ("p2/scripted/h3", None), ("p2/scripted/h4", "tailored")]


def kept(problem, trace_id, text):
    trace = Trace(id=trace_id, problem_id=problem.id, teacher="t", sample_idx=0, reasoning=text, answer_text="",
                  raw=text, finish_reason="stop", hinted=True)
    return example(problem, trace, PromptConfig())


def test_pairs_take_the_kept_corrections_only(tmp_path):
    p = Problem("a", "t", "What is 2 + 2?", "4")
    io.write_jsonl(tmp_path / "train.jsonl", [kept(p, "a/t/h2", "2 + 2 = 4\nAnswer: 4")])
    wrong = Trace(id="a/student/w0", problem_id="a", teacher="student", sample_idx=0, reasoning="", answer_text="5",
                  raw=" 2 + 2 = 5\nAnswer: 5 ", finish_reason="stop", meta={"corrections": ["a/t/h2", "a/t/h3"]})
    io.write_jsonl(tmp_path / "students.jsonl", [wrong])
    (pair,) = tailored_pairs(tmp_path / "train.jsonl", tmp_path / "students.jsonl")  # h3 was not kept
    assert pair == PreferenceExample(
        prompt=student_messages(p), chosen=[{"role": "assistant", "content": "2 + 2 = 4\nAnswer: 4"}],
        rejected=[{"role": "assistant", "content": "2 + 2 = 5\nAnswer: 5"}],
        meta={"problem_id": "a", "chosen_trace_id": "a/t/h2", "rejected_trace_id": "a/student/w0",
              "source": "tailored"})
    io.write_jsonl(tmp_path / "students.jsonl", [wrong, dataclasses.replace(wrong, meta={})])
    with pytest.raises(InputError, match="corrections") as e:
        tailored_pairs(tmp_path / "train.jsonl", tmp_path / "students.jsonl")
    assert "students.jsonl:2" in str(e.value)


def test_cli_generate_reads_the_probe_and_pairs_takes_student_traces(tmp_path, capsys):
    import json

    from reasondistill import cli

    problems = [Problem(pid, "hand", q, a) for pid, q, a in PROBLEMS]
    io.write_jsonl(tmp_path / "problems.jsonl", problems)
    io.write_jsonl(tmp_path / "probe.jsonl", [sample("p1", 0, False, "12"), sample("p2", 0, True, "12")])
    rc = cli.main(["generate", "--problems", str(tmp_path / "problems.jsonl"), "--out", str(tmp_path / "gen"),
                   "--probe", str(tmp_path / "probe.jsonl"), "teacher.backend=dummy", "generate.tailored=true",
                   "generate.samples=1", f"generate.cache_dir={tmp_path / 'cache'}"])
    assert rc == 0
    (student,) = io.read_records(tmp_path / "gen" / "student_traces.jsonl", Trace)
    assert student.id == "p1/student/w0" and student.meta["corrections"] == ["p1/dummy/h1"]
    capsys.readouterr()

    p1 = next(p for p in problems if p.id == "p1")
    io.write_jsonl(tmp_path / "train.jsonl", [kept(p1, "p1/dummy/h1", "1 + 10 = 11\nAnswer: 11")])
    io.write_jsonl(tmp_path / "negatives.jsonl", [])
    rc = cli.main(["pairs", "--train", str(tmp_path / "train.jsonl"), "--negatives", str(tmp_path / "negatives.jsonl"),
                   "--out", str(tmp_path / "pairs"), "--student-traces", str(tmp_path / "gen" / "student_traces.jsonl")])
    assert rc == 0 and json.loads(capsys.readouterr().out)["tailored_pairs"] == 1
    (pair,) = io.read_records(tmp_path / "pairs" / "pairs.jsonl", PreferenceExample)
    assert pair.rejected[0]["content"] == "work\nAnswer: 12" and pair.meta["rejected_trace_id"] == "p1/student/w0"
