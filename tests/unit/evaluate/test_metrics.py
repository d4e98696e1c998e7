import itertools
import json
import math

import pytest

from reasondistill.metrics import (gap_recovered, k_values, maj_at_k, normalize_answer, pass_at_k,
                                            summaries_to_records, summarize, wilson_ci)
from reasondistill.records import EvalMetric, EvalSample


def S(pid, idx, passed, extracted=None, *, formatted=True, tokens=10, finish="stop", model="m", text="t"):
    return EvalSample(problem_id=pid, model=model, sample_idx=idx, score=1.0 if passed else 0.0, passed=passed,
                      extracted=extracted, formatted=formatted, completion_tokens=tokens, text=text,
                      finish_reason=finish)


# --- wilson ----------------------------------------------------------------


@pytest.mark.parametrize("k,n,lo,hi", [
    (50, 100, 0.4038, 0.5962),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),  # Wikipedia / Newcombe-style worked value
    (1, 1, 0.2065, 1.0),
])
def test_wilson_known_values(k, n, lo, hi):
    got = wilson_ci(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-4)
    assert got[1] == pytest.approx(hi, abs=5e-4)


def test_wilson_contains_p_and_narrows_with_n():
    for k, n in [(3, 7), (30, 70), (300, 700)]:
        lo, hi = wilson_ci(k, n)
        assert 0 <= lo < k / n < hi <= 1
    assert (wilson_ci(300, 700)[1] - wilson_ci(300, 700)[0]) < (wilson_ci(3, 7)[1] - wilson_ci(3, 7)[0])


def test_wilson_edge_cases():
    assert wilson_ci(0, 0) == (0.0, 1.0)
    lo, hi = wilson_ci(5, 10, z=2.576)  # 99% is wider than 95%
    lo95, hi95 = wilson_ci(5, 10)
    assert lo < lo95 and hi > hi95
    with pytest.raises(ValueError):
        wilson_ci(11, 10)
    with pytest.raises(ValueError):
        wilson_ci(-1, 10)


# --- pass@k ----------------------------------------------------------------


def brute_pass_at_k(n, c, k):
    """Share of k-subsets of n samples (c correct) containing at least one correct one."""
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in sub) for sub in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_closed_form_and_large_n():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(200, 13, 10) == pytest.approx(1 - math.comb(187, 10) / math.comb(200, 10), rel=1e-12)
    assert pass_at_k(5, 0, 5) == 0.0
    assert pass_at_k(5, 1, 5) == 1.0


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (3, 4, 1), (3, -1, 1), (3, 1, 0), (0, 0, 1)])
def test_pass_at_k_validates(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# --- maj@k -----------------------------------------------------------------


def test_maj_at_k_majority_wins():
    answers = ["7", "12", "12", "7", "12"]
    correct = [True, False, False, True, False]
    assert maj_at_k(answers, correct, 1) is True
    assert maj_at_k(answers, correct, 3) is False  # 12 has 2 of 3
    assert maj_at_k(answers, correct, 5) is False


def test_maj_at_k_tie_goes_to_earliest():
    assert maj_at_k(["7", "12"], [True, False], 2) is True
    assert maj_at_k(["12", "7"], [False, True], 2) is False
    # 2-2 tie: "12" appeared first
    assert maj_at_k(["12", "7", "7", "12"], [False, True, True, False], 4) is False


def test_maj_at_k_ignores_none_and_normalises():
    assert maj_at_k([None, None, "5"], [False, False, True], 3) is True
    assert maj_at_k([None, None], [False, False], 2) is False
    # "1,000" / "1000.0" / " 1000 " are one answer and outvote "999"
    assert maj_at_k(["999", "1,000", "1000.0", " 1000 "], [False, True, True, True], 4) is True
    assert normalize_answer(" Paris. ") == "paris"
    assert normalize_answer("$42$") == "42"
    assert normalize_answer("-3.50") == "-3.5"


def test_maj_at_k_validates():
    with pytest.raises(ValueError):
        maj_at_k(["1"], [True, False], 1)
    with pytest.raises(ValueError):
        maj_at_k(["1", "2"], [True, False], 3)
    with pytest.raises(ValueError):
        maj_at_k(["1"], [True], 0)


def test_k_values():
    assert k_values(1) == [1]
    assert k_values(4) == [1, 2, 4]
    assert k_values(5) == [1, 2, 4, 5]
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(0) == []


# --- summarize -------------------------------------------------------------


def test_summarize_greedy_only():
    samples = [S("a", 0, True, "1", tokens=10), S("b", 0, False, "2", formatted=False, tokens=20),
               S("c", 0, True, "3", tokens=30, finish="length"), S("d", 0, False, None, tokens=40)]
    out = summarize(samples, "student_after")
    assert out["model"] == "student_after"
    assert out["n"] == 4
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["ci95"] == pytest.approx(list(wilson_ci(2, 4)))
    assert out["format_rate"] == pytest.approx(0.75)
    assert out["mean_tokens"] == pytest.approx(25.0)
    assert out["truncated_rate"] == pytest.approx(0.25)
    assert "pass_at_k" not in out and "maj_at_k" not in out and "sampled_accuracy" not in out
    json.dumps(out)  # JSON-safe


def test_summarize_with_sampled():
    samples = [
        # problem a: greedy right; samples 1 of 4 right, majority "9" (wrong)
        S("a", 0, True, "4"), S("a", 1, False, "9"), S("a", 2, True, "4"), S("a", 3, False, "9"),
        S("a", 4, False, "9"),
        # problem b: greedy wrong; samples 3 of 4 right, majority "2" (right)
        S("b", 0, False, "3"), S("b", 4, True, "2"), S("b", 2, True, "2"), S("b", 1, False, "5"),
        S("b", 3, True, "2"),
    ]
    out = summarize(samples, "m")
    assert out["n"] == 2
    assert out["accuracy"] == pytest.approx(0.5)
    assert set(out["pass_at_k"]) == {"1", "2", "4"}
    assert set(out["maj_at_k"]) == {"1", "2", "4"}
    assert out["pass_at_k"]["1"] == pytest.approx((1 / 4 + 3 / 4) / 2)
    assert out["pass_at_k"]["2"] == pytest.approx((pass_at_k(4, 1, 2) + pass_at_k(4, 3, 2)) / 2)
    assert out["pass_at_k"]["4"] == pytest.approx(1.0)
    # sorted by sample_idx: a -> 9,4,9,9 ; b -> 5,2,2,2
    assert out["maj_at_k"]["1"] == pytest.approx(0.0)  # a: "9" wrong; b: "5" wrong
    assert out["maj_at_k"]["2"] == pytest.approx(0.0)  # a: 9/4 tie -> 9 wrong; b: 5/2 tie -> 5 wrong
    assert out["maj_at_k"]["4"] == pytest.approx(0.5)  # a: 9 wrong; b: 2 right
    assert out["sampled_accuracy"] == pytest.approx(4 / 8)
    assert out["n_samples"] == 4
    json.dumps(out)


def test_summarize_uneven_sample_counts_uses_smallest():
    samples = [S("a", 0, True), S("a", 1, True, "1"), S("a", 2, True, "1"), S("a", 3, True, "1"),
               S("b", 0, True), S("b", 1, False, "2"), S("b", 2, False, "2")]
    out = summarize(samples, "m")
    assert set(out["pass_at_k"]) == {"1", "2"}
    assert out["pass_at_k"]["2"] == pytest.approx(0.5)


def test_summarize_empty_and_no_greedy():
    out = summarize([], "m")
    assert out["n"] == 0 and out["accuracy"] == 0.0 and out["ci95"] == [0.0, 1.0]
    with pytest.raises(ValueError, match="greedy"):
        summarize([S("a", 1, True)], "m")


def test_summaries_to_records():
    out = summarize([S("a", 0, True, "1"), S("a", 1, True, "1"), S("a", 2, False, "2"),
                     S("b", 0, False, "1"), S("b", 1, False, "3"), S("b", 2, False, "3")], "teacher")
    rows = summaries_to_records(out)
    assert all(isinstance(r, EvalMetric) and r.model == "teacher" and r.n == 2 for r in rows)
    by_metric = {r.metric: r for r in rows}
    assert by_metric["accuracy"].value == pytest.approx(0.5)
    assert by_metric["accuracy"].ci == tuple(out["ci95"])
    assert {"format_rate", "mean_tokens", "truncated_rate", "pass@1", "pass@2", "maj@1", "maj@2",
            "sampled_accuracy"} <= set(by_metric)
    assert by_metric["pass@2"].value == pytest.approx(0.5)


# --- gap recovered ---------------------------------------------------------


def test_gap_recovered():
    assert gap_recovered(0.9, 0.5, 0.7) == pytest.approx(0.5)
    assert gap_recovered(0.9, 0.5, 0.9) == pytest.approx(1.0)
    assert gap_recovered(0.9, 0.5, 0.4) == pytest.approx(-0.25)
    assert gap_recovered(0.5, 0.5, 0.7) is None
    assert gap_recovered(0.4, 0.5, 0.7) is None
    assert gap_recovered(None, 0.5, 0.7) is None


def test_paired_difference_counts_discordant_problems_and_brackets_the_mean():
    from reasondistill.metrics import paired_difference

    def samples(passed, model):
        return [EvalSample(f"p{i}", model, 0, float(x), bool(x), None, True, 3, "") for i, x in enumerate(passed)]

    a = samples([1] * 30 + [1] * 10 + [0] * 5 + [0] * 55, "a")  # 40 right
    b = samples([1] * 30 + [0] * 10 + [1] * 5 + [0] * 55, "b")  # 35 right, 30 shared
    d = paired_difference(a, b)
    assert d["n"] == 100 and d["wins"] == 10 and d["losses"] == 5
    assert d["delta"] == pytest.approx(0.05)
    lo, hi = d["ci95"]
    assert lo < 0.05 < hi and hi - lo < 0.2  # paired: far narrower than the two Wilson intervals overlap
    assert paired_difference(a, a)["ci95"] == [0.0, 0.0]
    # sampled generations (sample_idx > 0) and problems only one side answered are left out
    extra = [EvalSample("p999", "a", 0, 1.0, True, None, True, 3, ""), EvalSample("p0", "a", 1, 0.0, False, None, True, 3, "")]
    assert paired_difference(a + extra, b)["n"] == 100
    assert paired_difference([], b)["delta"] is None
