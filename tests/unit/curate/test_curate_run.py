"""curate.run end to end on tiny hand-made problems, traces and verdicts."""

import importlib
import json

import pytest

from reasondistill import curate as curate_stage
from reasondistill.config import CurateConfig, GenerateConfig, PromptConfig, VerifyConfig
from reasondistill.errors import InputError
from reasondistill.io import iter_jsonl, read_records, write_jsonl
from reasondistill.records import Problem, Trace, TrainExample, Verdict
from reasondistill.prompts import student_messages

from tests.helpers import recipe, stage_layout

run_module = importlib.import_module("reasondistill.curate.run")


def run(cfg, problems, traces, verdicts, out, prompt_cfg=None):
    """The curate stage alone on these files (as ``reasondistill curate`` runs it)."""
    r = recipe(curate=cfg, generate=GenerateConfig(prompt=prompt_cfg or PromptConfig()))
    return curate_stage.run(r, stage_layout(out, "curate", train_problems=problems, traces=traces, verdicts=verdicts))

PAD = " Let me think about it carefully, step by step."


def T(tid, pid, raw, *, hinted=False, finish="stop", idx=0):
    return Trace(id=tid, problem_id=pid, teacher="dummy", sample_idx=idx, reasoning=raw, answer_text="", raw=raw,
                 finish_reason=finish, hinted=hinted)


def V(trace, passed):
    return Verdict(trace_id=trace.id, problem_id=trace.problem_id, verifier="math", score=float(passed),
                   passed=passed, reason="correct" if passed else "wrong")


PROBLEMS = [Problem("p1", "t", "What is 1+1?", "2"), Problem("p2", "t", "Capital of France?", "Paris"),
            Problem("p3", "t", "What is 2+3?", "5"), Problem("p4", "t", "Unsampled?", "0")]
TRACES_AND_PASSED = [
    (T("a1", "p1", "1 plus 1 is 2." + PAD + "\nAnswer: 2"), True),
    (T("a2", "p1", "1+1=2\nAnswer: 2"), True),
    (T("a3", "p1", "  1+1=2\n\nanswer: 2  "), True),  # a2 modulo whitespace and case: duplicate
    (T("a4", "p1", "2\nAnswer: 2", hinted=True), True),  # shortest, but hinted: least preferred
    (T("a5", "p1", "1+1=3\nAnswer: 3"), False),  # negative
    (T("a6", "p1", "1+1=2, and" + PAD * 3 + "\nAnswer: 2", finish="length"), True),  # truncated
    (T("a7", "p1", "1+1 is" + PAD, finish="length"), False),  # truncated, not a negative
    (T("b1", "p2", "The hint says Paris.\nAnswer: Paris", hinted=True), True),
    (T("b2", "p2", "Answer: Lyon"), False),
    (T("c1", "p3", "", finish="error"), False),
    (T("c2", "p3", "2+3 makes 5"), True),  # passed on the last-number fallback: unformatted
]


@pytest.fixture
def files(tmp_path):
    write_jsonl(tmp_path / "problems.jsonl", PROBLEMS)
    write_jsonl(tmp_path / "traces.jsonl", [t for t, _ in TRACES_AND_PASSED])
    write_jsonl(tmp_path / "verdicts.jsonl", [V(t, ok) for t, ok in TRACES_AND_PASSED])
    return tmp_path / "problems.jsonl", tmp_path / "traces.jsonl", tmp_path / "verdicts.jsonl", tmp_path / "out"


def curate(files, **cfg):
    problems, traces, verdicts, out = files
    manifest = run(CurateConfig(**cfg), problems, traces, verdicts, out)
    train = read_records(out / "train.jsonl", TrainExample, allow_empty=True)
    negatives = read_records(out / "negatives.jsonl", TrainExample, allow_empty=True)
    rejected = {o["trace_id"]: o["reason"] for _, o in iter_jsonl(out / "rejected.jsonl", allow_empty=True)}
    return manifest, train, negatives, rejected


def ids(examples):
    return [e.meta["trace_id"] for e in examples]


def test_defaults(files):
    manifest, train, negatives, rejected = curate(files)
    assert ids(train) == ["a2", "a1", "b1"]  # per problem: unhinted first, then shorter
    assert ids(negatives) == ["a5", "b2"]
    assert rejected == {"a3": "duplicate", "a4": "over_cap", "a6": "truncated", "a7": "truncated",
                        "c1": "generation_error", "c2": "unformatted"}
    counts = manifest["outputs"]["counts"]
    assert counts == {"traces": 11, "kept": 3, "kept_hinted": 1, "negatives": 2, "rejected": 6,
                      "dropped": {"truncated": 2, "generation_error": 1, "unformatted": 1, "duplicate": 1,
                                  "over_cap": 1},
                      "problems": 4, "problems_with_kept": 2, "mean_pass_rate": pytest.approx((4 / 6 + 0 + 0.5) / 3,
                                                                                              abs=1e-4)}
    assert counts["kept"] + counts["negatives"] + counts["rejected"] == counts["traces"]
    assert manifest["stage"] == "curate"
    assert set(manifest["outputs"]["files"]) == {"train.jsonl", "negatives.jsonl", "rejected.jsonl",
                                                 "pass_rates.jsonl"}


def test_train_example_format(files):
    _, train, negatives, _ = curate(files)
    ex = train[2]
    assert ex.prompt == student_messages(PROBLEMS[1], PromptConfig())
    assert "Paris" not in ex.prompt[0]["content"]  # hinted trace, trained under the plain prompt
    assert ex.completion == [{"role": "assistant", "content": "The hint says Paris.\nAnswer: Paris"}]
    assert ex.meta == {"problem_id": "p2", "trace_id": "b1", "teacher": "dummy", "hinted": True}
    assert train[0].completion[0]["content"] == "1+1=2\nAnswer: 2"
    assert negatives[0].completion[0]["content"] == "1+1=3\nAnswer: 3"
    assert list(json.loads((files[3] / "train.jsonl").read_text().splitlines()[0])) == ["prompt", "completion",
                                                                                        "meta"]


def test_pass_rates_use_unhinted_samples_only(files):
    curate(files)
    rows = {o["problem_id"]: o for _, o in iter_jsonl(files[3] / "pass_rates.jsonl")}
    assert list(rows) == ["p1", "p2", "p3", "p4"]
    assert rows["p1"] == {"problem_id": "p1", "n": 6, "n_correct": 4, "pass_rate": pytest.approx(4 / 6),
                          "difficulty": pytest.approx(2 / 6)}
    assert rows["p2"] == {"problem_id": "p2", "n": 1, "n_correct": 0, "pass_rate": 0.0, "difficulty": 1.0}
    assert rows["p3"]["n"] == 2 and rows["p3"]["pass_rate"] == 0.5
    assert rows["p4"] == {"problem_id": "p4", "n": 0, "n_correct": 0, "pass_rate": None, "difficulty": None}


def test_exclude_hinted(files):
    _, train, _, rejected = curate(files, include_hinted=False)
    assert ids(train) == ["a2", "a1"]
    assert rejected["a4"] == "hinted" and rejected["b1"] == "hinted"


def test_keep_truncated_when_asked(files):
    _, train, negatives, rejected = curate(files, drop_truncated=False, max_per_problem=5)
    assert ids(train) == ["a2", "a1", "a6", "a4", "b1"]
    assert rejected["a7"] == "truncated" and "a7" not in ids(negatives)  # cut-off failures are no negatives


def test_cap_and_dedup_switches(files):
    _, train, _, rejected = curate(files, max_per_problem=1)
    assert ids(train) == ["a2", "b1"]
    assert rejected["a1"] == rejected["a4"] == "over_cap"
    _, train, _, rejected = curate(files, dedup=False, max_per_problem=3)
    assert ids(train) == ["a2", "a3", "a1", "b1"]
    assert rejected["a4"] == "over_cap"


def test_require_format_off_keeps_fallback_passes(files):
    _, train, _, rejected = curate(files, require_format=False)
    assert "c2" in ids(train) and "c2" not in rejected


def test_negatives_are_deduplicated(tmp_path):
    traces = [T("n1", "p1", "Answer: 3"), T("n2", "p1", "answer:   3"), T("n3", "p1", "Answer: 4")]
    write_jsonl(tmp_path / "problems.jsonl", PROBLEMS[:1])
    write_jsonl(tmp_path / "traces.jsonl", traces)
    write_jsonl(tmp_path / "verdicts.jsonl", [V(t, False) for t in traces])
    m = run(CurateConfig(), tmp_path / "problems.jsonl", tmp_path / "traces.jsonl", tmp_path / "verdicts.jsonl",
            tmp_path / "out")
    assert m["outputs"]["counts"]["negatives"] == 2 and m["outputs"]["counts"]["dropped"] == {"duplicate": 1}
    assert m["outputs"]["counts"]["kept"] == 0 and (tmp_path / "out" / "train.jsonl").read_text() == ""


def test_resume(files, monkeypatch):
    problems, traces, verdicts, out = files
    first = run(CurateConfig(), problems, traces, verdicts, out)
    monkeypatch.setattr(run_module, "build_policies", lambda cfg: (_ for _ in ()).throw(AssertionError("rerun")))
    assert run(CurateConfig(), problems, traces, verdicts, out)["started_at"] == first["started_at"]
    with pytest.raises(AssertionError, match="rerun"):
        run(CurateConfig(max_per_problem=3), problems, traces, verdicts, out)


def _append(path, obj):
    with path.open("a") as fh:
        fh.write(json.dumps(obj) + "\n")


def test_verdict_for_unknown_trace(files):
    problems, traces, verdicts, out = files
    _append(verdicts, {"trace_id": "zzz", "problem_id": "p1", "verifier": "math", "score": 1.0, "passed": True,
                       "reason": "correct"})
    with pytest.raises(InputError) as err:
        run(CurateConfig(), problems, traces, verdicts, out)
    assert (err.value.file, err.value.line, err.value.field) == (str(verdicts), 12, "trace_id")


def test_verdict_with_mismatched_problem(files):
    problems, traces, verdicts, out = files
    lines = verdicts.read_text().splitlines()
    row = json.loads(lines[1])
    row["problem_id"] = "p2"
    lines[1] = json.dumps(row)
    verdicts.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        run(CurateConfig(), problems, traces, verdicts, out)
    assert (err.value.file, err.value.line, err.value.field) == (str(verdicts), 2, "problem_id")


def test_trace_without_verdict(files):
    problems, traces, verdicts, out = files
    verdicts.write_text("\n".join(verdicts.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(InputError) as err:
        run(CurateConfig(), problems, traces, verdicts, out)
    assert (err.value.file, err.value.line, err.value.field) == (str(traces), 11, "id")
    assert "no verdict" in str(err.value)


def test_duplicate_verdict(files):
    problems, traces, verdicts, out = files
    _append(verdicts, json.loads(verdicts.read_text().splitlines()[0]))
    with pytest.raises(InputError) as err:
        run(CurateConfig(), problems, traces, verdicts, out)
    assert (err.value.line, err.value.field) == (12, "trace_id")


def test_trace_for_unknown_problem(files):
    problems, traces, verdicts, out = files
    problems.write_text("\n".join(problems.read_text().splitlines()[1:]) + "\n")  # drop p1
    with pytest.raises(InputError) as err:
        run(CurateConfig(), problems, traces, verdicts, out)
    assert (err.value.file, err.value.line, err.value.field) == (str(traces), 1, "problem_id")


def test_verify_then_curate(tmp_path):
    """The two stages chained on real verifier output."""
    from reasondistill import verify as verify_stage

    def verify(cfg, problems, traces, out):
        return verify_stage.run(recipe(verify=cfg), stage_layout(out, "verify", train_problems=problems, traces=traces))

    problems = [Problem("q1", "t", "1+2?", "3"), Problem("q2", "t", "half of 1?", "\\frac{1}{2}")]
    traces = [T("x1", "q1", "1+2=3\nAnswer: 3"), T("x2", "q1", "Answer: 4", idx=1),
              T("x3", "q2", "Answer: 0.5"), T("x4", "q2", "Answer: 1/2", idx=1), T("x5", "q2", "Answer: 0.50", idx=2)]
    write_jsonl(tmp_path / "problems.jsonl", problems)
    write_jsonl(tmp_path / "traces.jsonl", traces)
    verify(VerifyConfig(), tmp_path / "problems.jsonl", tmp_path / "traces.jsonl", tmp_path / "verify")
    m = run(CurateConfig(), tmp_path / "problems.jsonl", tmp_path / "traces.jsonl",
            tmp_path / "verify" / "verdicts.jsonl", tmp_path / "curate")
    c = m["outputs"]["counts"]
    assert (c["kept"], c["negatives"], c["dropped"]) == (3, 1, {"over_cap": 1})
