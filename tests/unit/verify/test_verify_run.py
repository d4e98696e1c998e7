"""verify.run end to end on tiny JSONL files."""

import importlib
import json

import pytest

from reasondistill.config import VerifyConfig
from reasondistill.errors import InputError
from reasondistill.io import read_json, read_records, write_jsonl
from reasondistill.records import Problem, Trace, Verdict
from reasondistill import verify as verify_stage
from tests.helpers import recipe, stage_layout

# the package attribute ``run`` is the function; the module is reached through importlib
run_module = importlib.import_module("reasondistill.verify.run")


def run(cfg, problems, traces, out):
    """The verify stage alone on these files (as ``reasondistill verify`` runs it)."""
    return verify_stage.run(recipe(verify=cfg), stage_layout(out, "verify", train_problems=problems, traces=traces))


def T(tid, pid, raw, **kw):
    return Trace(id=tid, problem_id=pid, teacher="dummy", sample_idx=0, reasoning=raw, answer_text="", raw=raw,
                 finish_reason=kw.pop("finish_reason", "stop"), **kw)


@pytest.fixture
def files(tmp_path):
    problems = [Problem("p1", "t", "1+1?", "2"), Problem("p2", "t", "capital of France?", "Paris"),
                Problem("p3", "t", "half?", "\\frac{1}{2}")]
    traces = [T("t1", "p1", "1+1=2\nAnswer: 2"), T("t2", "p1", "Answer: 3"), T("t3", "p2", "Answer: paris."),
              T("t4", "p3", "it is 0.5"), T("t5", "p3", "no idea")]
    write_jsonl(tmp_path / "problems.jsonl", problems)
    write_jsonl(tmp_path / "traces.jsonl", traces)
    return tmp_path / "problems.jsonl", tmp_path / "traces.jsonl", tmp_path / "out"


def test_package_exports_run_function():
    assert callable(verify_stage.run) and verify_stage.run is run_module.run


def test_run_writes_verdicts_and_manifest(files):
    problems, traces, out = files
    manifest = run(VerifyConfig(), problems, traces, out)
    verdicts = read_records(out / "verdicts.jsonl", Verdict)
    assert [v.trace_id for v in verdicts] == ["t1", "t2", "t3", "t4", "t5"]
    assert [v.passed for v in verdicts] == [True, False, True, True, False]
    assert [v.verifier for v in verdicts] == ["math", "math", "exact", "math", "math"]
    assert [v.reason for v in verdicts] == ["correct", "wrong", "correct", "correct", "no_answer"]
    assert verdicts[3].extracted == "0.5" and verdicts[4].extracted is None
    assert all(v.problem_id == t for v, t in zip(verdicts, ["p1", "p1", "p2", "p3", "p3"]))
    counts = manifest["outputs"]["counts"]
    assert counts["n"] == 5 and counts["passed"] == 3
    assert counts["formatted"] == 3 and counts["format_rate"] == 0.6
    assert counts["reasons"] == {"correct": 3, "wrong": 1, "no_answer": 1}
    assert manifest["stage"] == "verify"
    assert read_json(out / "manifest.json")["config_hash"] == manifest["config_hash"]


def test_run_resumes_when_config_and_inputs_match(files, monkeypatch):
    problems, traces, out = files
    first = run(VerifyConfig(), problems, traces, out)

    def boom(*a, **k):
        raise AssertionError("should not re-verify")

    monkeypatch.setattr(run_module, "run_check", boom)
    assert run(VerifyConfig(), problems, traces, out)["started_at"] == first["started_at"]
    with pytest.raises(AssertionError, match="re-verify"):  # a changed config re-runs
        run(VerifyConfig(timeout_s=9.0), problems, traces, out)


def test_unknown_problem_id_names_file_line_field(files):
    problems, traces, out = files
    with traces.open("a") as fh:
        fh.write("\n")  # a blank line: line numbers must still be right
        fh.write(json.dumps({"id": "t9", "problem_id": "nope", "teacher": "x", "sample_idx": 0, "reasoning": "",
                             "answer_text": "", "raw": "Answer: 1", "finish_reason": "stop"}) + "\n")
    with pytest.raises(InputError) as err:
        run(VerifyConfig(), problems, traces, out)
    e = err.value
    assert e.file == str(traces) and e.line == 7 and e.field == "problem_id"
    assert "nope" in str(e)
    assert not (out / "verdicts.jsonl").exists()


def test_duplicate_trace_id_is_an_input_error(files):
    problems, traces, out = files
    with traces.open("a") as fh:
        fh.write(traces.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError) as err:
        run(VerifyConfig(), problems, traces, out)
    assert err.value.line == 6 and err.value.field == "id"


def test_timeouts_are_counted_not_fatal(files, monkeypatch):
    import time

    from reasondistill.grading.math import MathVerifier

    def slow(self, problem, text):
        time.sleep(3)

    monkeypatch.setattr(MathVerifier, "check", slow)
    problems, traces, out = files
    manifest = run(VerifyConfig(timeout_s=0.05), problems, traces, out)
    assert manifest["outputs"]["counts"]["reasons"] == {"timeout": 4, "correct": 1}
