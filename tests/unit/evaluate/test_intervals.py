"""Estimators and intervals against hand-computed values."""

import math

import pytest

from reasondistill import bootstrap
from reasondistill.metrics import (gap_recovered_interval, paired_bootstrap, pass_at_k, sampled_pass1, summarize,
                                   token_stats)
from reasondistill.records import EvalSample


def S(pid, idx, passed, *, extracted="1", tokens=10, finish="stop", formatted=True):
    return EvalSample(problem_id=pid, model="m", sample_idx=idx, score=float(passed), passed=passed,
                      extracted=extracted, formatted=formatted, completion_tokens=tokens, text="t",
                      finish_reason=finish)


# --- pass@k edge cases -------------------------------------------------------------------------


@pytest.mark.parametrize("n,c,k,expected", [
    (4, 0, 1, 0.0), (4, 0, 4, 0.0),  # c = 0: never
    (4, 1, 4, 1.0), (4, 4, 4, 1.0),  # n = k: any correct sample is in the one k-subset
    (5, 0, 5, 0.0),
    (4, 1, 1, 0.25), (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
])
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


# --- percentile and quantiles ------------------------------------------------------------------


def test_percentile_interpolates_linearly():
    s = [1.0, 2.0, 3.0, 4.0]
    assert bootstrap.percentile(s, 0.0) == 1.0
    assert bootstrap.percentile(s, 1.0) == 4.0
    assert bootstrap.percentile(s, 0.5) == 2.5  # position 1.5
    assert bootstrap.percentile(s, 0.25) == pytest.approx(1.75)  # position 0.75
    assert bootstrap.quantiles([5, 1, 3]) == {"p10": 1.4, "p25": 2.0, "p50": 3.0, "p75": 4.0, "p90": 4.6}
    with pytest.raises(ValueError):
        bootstrap.percentile([], 0.5)


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_is_reproducible_and_contains_the_point():
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1] * 3
    a, b = bootstrap.mean_ci(values), bootstrap.mean_ci(values)
    assert a == b  # fixed seed
    assert a.value == pytest.approx(0.7)
    assert a.lo < a.value < a.hi
    tokens = [float(i * i % 37) for i in range(40)]  # continuous-ish values: seeds move the end points
    assert bootstrap.mean_ci(tokens, seed=0) == bootstrap.mean_ci(tokens, seed=0)
    other = bootstrap.mean_ci(tokens, seed=1)
    assert other.value == bootstrap.mean_ci(tokens).value
    assert (other.lo, other.hi) != (bootstrap.mean_ci(tokens).lo, bootstrap.mean_ci(tokens).hi)
    # roughly the normal interval for a proportion of 30: 0.7 +- 1.96 * sqrt(.21/30) = +-0.164
    assert a.hi - a.lo == pytest.approx(2 * 1.96 * math.sqrt(0.21 / 30), abs=0.05)


def test_bootstrap_hand_checkable_small_case():
    # [0, 0, 0, 1]: a resample's mean is Binomial(4, 1/4) / 4: P(0) = .316, P(.25) = .422, P(.5) = .211,
    # P(.75) = .047, P(1) = .004. Cumulative: .316, .738, .949, .996 -> 2.5th percentile 0, 97.5th 0.75
    iv = bootstrap.mean_ci([0, 0, 0, 1])
    assert (iv.value, iv.lo, iv.hi) == (0.25, 0.0, 0.75)
    # constant data: every resample is the same, so the interval collapses onto the point
    assert bootstrap.mean_ci([3, 3, 3]).to_dict()["ci95"] == [3.0, 3.0]
    # a single problem: nothing to vary
    assert bootstrap.mean_ci([7]).to_dict()["ci95"] == [7.0, 7.0]
    assert bootstrap.mean_ci([]).to_dict() == {**bootstrap.mean_ci([]).to_dict(), "value": None, "ci95": None}


def test_paired_difference_ci_keeps_pairs():
    # after = before + 1 on every problem: every paired resample gives exactly +1
    before = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    after = [b + 1 for b in before]
    iv = bootstrap.difference_ci(after, before)
    assert (iv.value, iv.lo, iv.hi) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap.difference_ci([1.0], [1.0, 2.0])


def test_paired_bootstrap_on_samples_counts_wins_and_losses():
    before = [S(f"p{i}", 0, i < 3) for i in range(10)]
    after = [S(f"p{i}", 0, i < 6 or i == 9) for i in range(10)] + [S("extra", 0, True)]  # extra: not shared
    d = paired_bootstrap(after, before)
    assert d["n"] == 10 and d["value"] == pytest.approx(0.4)
    assert d["wins"] == 4 and d["losses"] == 0
    assert d["ci95"][0] <= 0.4 <= d["ci95"][1] and d["ci95"][0] > 0  # only wins: the interval excludes 0


def test_gap_recovered_interval_hand_values():
    # teacher 0.8, before 0.2, after 0.5 on 10 problems: (0.5 - 0.2) / (0.8 - 0.2) = 0.5
    teacher = [S(f"p{i}", 0, i < 8) for i in range(10)]
    before = [S(f"p{i}", 0, i < 2) for i in range(10)]
    after = [S(f"p{i}", 0, i < 5) for i in range(10)]
    g = gap_recovered_interval(teacher, before, after)
    assert g["value"] == pytest.approx(0.5) and g["n"] == 10
    assert g["ci95"][0] <= 0.5 <= g["ci95"][1]
    assert g == gap_recovered_interval(teacher, before, after)  # reproducible
    # nested outcomes (after solves a superset of before, teacher of after): every resample
    # with a gap recovers between 0 and 1
    assert 0.0 <= g["ci95"][0] and g["ci95"][1] <= 1.0


def test_gap_recovered_with_identical_after_and_teacher_is_exactly_one():
    teacher = [S(f"p{i}", 0, i % 2 == 0) for i in range(8)]
    before = [S(f"p{i}", 0, False) for i in range(8)]
    g = gap_recovered_interval(teacher, before, teacher)
    assert g["value"] == 1.0 and g["ci95"] == [1.0, 1.0]


def test_gap_recovered_undefined_without_a_gap():
    same = [S(f"p{i}", 0, i < 3) for i in range(6)]
    g = gap_recovered_interval(same, same, same)
    assert g["value"] is None and g["ci95"] is None and g["undefined_resamples"] == bootstrap.N_BOOT


def test_gap_recovered_resamples_problems_jointly():
    # Row by row the gap is recovered exactly where the teacher beats the student before; a joint
    # resample keeps that, so the ratio is always 1. Resampling models independently would not.
    teacher = [S(f"p{i}", 0, i < 5) for i in range(10)]
    before = [S(f"p{i}", 0, False) for i in range(10)]
    assert gap_recovered_interval(teacher, before, teacher)["ci95"] == [1.0, 1.0]
    g = bootstrap.gap_recovered_ci([1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0])
    assert g.value == 0.5 and g.lo is not None and 0.0 <= g.lo <= 0.5 <= g.hi <= 1.0


# --- summaries ---------------------------------------------------------------------------------


def test_token_stats():
    t = token_stats([10, 20, 30, 40])
    assert t["mean"] == 25.0 and t["min"] == 10 and t["max"] == 40
    assert t["quantiles"]["p50"] == 25.0 and t["quantiles"]["p25"] == 17.5
    assert t["ci95"][0] <= 25.0 <= t["ci95"][1]


def test_sampled_pass1_is_the_seed_mean():
    # 3 problems x 2 seeds: seed 1 solves p0, p1; seed 2 solves p0 -> per run 2/3 and 1/3, mean 0.5
    per_problem = [[S("p0", 1, True), S("p0", 2, True)], [S("p1", 1, True), S("p1", 2, False)],
                   [S("p2", 1, False), S("p2", 2, False)]]
    p = sampled_pass1(per_problem)
    assert p["value"] == pytest.approx(0.5) and p["runs"] == 2
    assert p["per_run"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(1 / 3)}
    assert p["ci95"][0] <= 0.5 <= p["ci95"][1]


def test_summarize_adds_rates_tokens_and_intervals():
    samples = [S("a", 0, True, tokens=10),
               S("b", 0, False, extracted=None, formatted=False, tokens=30, finish="length"),
               S("a", 1, True), S("a", 2, False), S("b", 1, False), S("b", 2, False)]
    out = summarize(samples, "m")
    assert out["answer_rate"] == 0.5 and out["truncated_rate"] == 0.5 and out["format_rate"] == 0.5
    assert out["tokens"]["mean"] == 20.0 and out["tokens"]["quantiles"]["p50"] == 20.0
    assert out["answer_ci95"][0] < 0.5 < out["answer_ci95"][1]
    assert out["pass1_sampled"]["value"] == pytest.approx(0.25) == out["pass_at_k"]["1"]
    assert set(out["pass_at_k_ci95"]) == set(out["pass_at_k"]) == {"1", "2"}
    lo, hi = out["pass_at_k_ci95"]["2"]
    assert lo <= out["pass_at_k"]["2"] <= hi
