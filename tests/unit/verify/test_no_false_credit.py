"""A truncated output never earns credit through the last-number fallback, and every place that
reports an accuracy says how much of it the fallback credited."""

import pytest

from reasondistill import metrics
from reasondistill.config import VerifyConfig
from reasondistill.evaluate.audit import audit
from reasondistill.records import EvalSample, Problem
from reasondistill.report.format import TABLE_HEADER, audit_lines, model_rows
from reasondistill.grading import get_verifier, run_check, score_text

P = Problem(id="p1", source="t", prompt="What is 3 + 4?", answer="7")
CUT = "3 + 4 = 7, and then we add the carry 7"  # cut at the token limit: its last number is chance


@pytest.mark.parametrize("verifier", ["math", "exact", "auto"])
def test_fallback_credits_a_finished_answer_but_never_a_truncated_one(verifier):
    cfg = VerifyConfig(verifier=verifier)
    assert score_text(P, CUT, cfg).passed  # finished output: the fallback still applies
    cut = score_text(P, CUT, cfg, truncated=True)
    assert not cut.passed and cut.extracted is None and cut.reason == "no_answer"


def test_an_answer_line_written_before_the_cut_still_counts():
    s = score_text(P, "3 + 4 = 7\nAnswer: 7\nand some more text that was cut", VerifyConfig(), truncated=True)
    assert s.passed and s.formatted


def test_run_check_with_a_fallback_verifier_drops_the_fallback_when_truncated():
    verifier = get_verifier("math", fallback_last_number=True)
    assert run_check(verifier, P, CUT, 5.0).passed
    assert not run_check(verifier, P, CUT, 5.0, truncated=True).passed
    assert verifier.fallback_last_number  # the shared instance is left as it was


def sample(pid, passed, formatted, finish="stop", text="x", idx=0):
    return EvalSample(problem_id=pid, model="m", sample_idx=idx, score=float(passed), passed=passed,
                      extracted="7" if passed else None, formatted=formatted, completion_tokens=3, text=text,
                      finish_reason=finish)


def test_summary_counts_greedy_fallback_credits_and_the_report_shows_them():
    samples = [sample("a", True, True), sample("b", True, False), sample("c", True, False),
               sample("d", False, False), sample("b", True, False, idx=1)]  # a sampled row is not greedy
    summary = metrics.summarize(samples, "m")
    assert summary["accuracy"] == 0.75 and summary["fallback_credits"] == 2
    row = model_rows({"student_after": summary})[0]
    assert row[TABLE_HEADER.index("fallback credits")] == "2 (50.0%)"
    assert model_rows({"teacher": {"accuracy": 0.5, "n": 4}})[0][3] == "n/a"  # older summaries


def test_audit_regrades_truncated_answers_without_the_fallback_and_counts_fallback_credits():
    problems = [P, Problem(id="p2", source="t", prompt="2+2?", answer="4")]
    samples = [sample("p1", True, False, text="so it is 7"),  # a fallback credit, agreed on
               sample("p2", True, False, finish="length", text="we get 4")]  # recorded by an older rule
    rows, counts = audit(problems, samples, VerifyConfig())
    assert counts["fallback_credits"] == 2 and counts["n"] == 2 and counts["disagree"] == 0
    line = audit_lines({"student_after": {"audit": counts}})[0]
    assert "2 answers credited by the last-number fallback" in line
