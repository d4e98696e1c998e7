"""Seed-aware intervals: hand-computed cases (fractions worked out on paper, see each comment)."""

import math

import pytest

from reasondistill.seed_stats import format_noise, interval, on_shared, seed_noise, spread_factor, t_quantile, verdict

# 3 seeds x 4 problems. Per-seed accuracies 3/4, 3/4, 1/2: mean 2/3, sample variance 1/48, so the
# training part of the variance of the mean is 1/144. Per-problem seed means 2/3, 1/3, 2/3, 1:
# sample variance 2/27, over 4 problems 1/54. Total 11/432; Welch-Satterthwaite
# df = (11/432)^2 / ((1/144)^2/2 + (1/54)^2/3) = 726/155.
A = [[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]]
# 2 seeds, both 1/4 (no training variance). Per-problem differences of seed means:
# 1/6, 1/3, 1/6, 1 -> mean 5/12, sample variance 17/108, over 4 problems 17/432.
B = [[0, 0, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("df,expected", [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (10, 2.2281389),
                                         (30, 2.0422725), (math.inf, 1.9599640)])
def test_t_quantiles_match_the_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-6)


def test_mean_over_seeds_hand_computed():
    iv = interval(A)
    assert iv.value == pytest.approx(2 / 3)
    assert iv.se_seeds ** 2 == pytest.approx(1 / 144) and iv.se_problems ** 2 == pytest.approx(1 / 54)
    assert iv.df == pytest.approx(726 / 155)
    half = t_quantile(0.975, 726 / 155) * math.sqrt(11 / 432)
    assert (iv.lo, iv.hi) == (pytest.approx(2 / 3 - half), pytest.approx(2 / 3 + half))
    assert iv.per_seed == ((0.75, 0.75, 0.5),) and iv.seeds_measured


def test_difference_hand_computed():
    iv = interval(A, B)
    assert iv.value == pytest.approx(5 / 12)
    assert iv.se_seeds ** 2 == pytest.approx(1 / 144) and iv.se_problems ** 2 == pytest.approx(17 / 432)
    total = 1 / 144 + 17 / 432
    df = total ** 2 / ((1 / 144) ** 2 / 2 + (17 / 432) ** 2 / 3)  # B's zero variance adds nothing
    assert iv.df == pytest.approx(df)
    assert iv.hi - iv.value == pytest.approx(t_quantile(0.975, df) * math.sqrt(total))
    assert verdict(iv) == "no detectable difference" and iv.n_seeds == (3, 2)


def test_seed_noise_widens_what_a_problems_only_interval_would_call_significant():
    # two arms on 200 problems whose per-seed accuracies differ by a constant 5 points, but whose
    # seeds spread by 20 points: the difference is not detectable
    def arm(accs):
        return [[1] * int(200 * a) + [0] * (200 - int(200 * a)) for a in accs]
    wide = interval(arm([0.30, 0.50, 0.40]), arm([0.25, 0.45, 0.35]))
    assert wide.value == pytest.approx(0.05) and verdict(wide) == "no detectable difference"
    tight = interval(arm([0.50, 0.51, 0.49]), arm([0.30, 0.31, 0.29]))
    assert verdict(tight) == "better" and verdict(interval(arm([0.30, 0.31, 0.29]), arm([0.50, 0.51, 0.49]))) == "worse"


def test_one_seed_is_the_problems_alone_and_says_so():
    iv = interval([[1, 0, 1, 1]])
    assert iv.se_seeds == 0 and not iv.seeds_measured and iv.df == pytest.approx(3)


def test_arms_on_different_problems_are_refused():
    with pytest.raises(ValueError, match="same problems"):
        interval(A, [[1, 0, 1]])
    with pytest.raises(ValueError, match="same problems"):
        interval([[1, 0], [1]])


# Paired seeds against A. C's per-seed accuracies 1/2, 1/2, 1/4 trail A's (3/4, 3/4, 1/2) by exactly
# 1/4 each: the per-seed differences have no variance. Per-problem differences of the seed means
# 0, 0, 0, 1: mean 1/4, sample variance 1/4, over 4 problems 1/16; df 3 (the problems alone).
C = [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0]]
# D's per-seed 1/2, 3/4, 0: differences 1/4, 0, 1/2, sample variance 1/16, over 3 pairs 1/48 (df 2).
# Per-problem differences 0, 0, 1/3, 2/3: sample variance 11/108, over 4 problems 11/432.
D = [[1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 0, 0]]


def test_paired_seeds_hand_computed():
    iv = interval(A, C, paired=True)
    assert iv.value == pytest.approx(1 / 4) and iv.seeds_paired
    assert iv.se_seeds == 0 and iv.se_problems ** 2 == pytest.approx(1 / 16) and iv.df == pytest.approx(3)
    assert iv.hi - iv.value == pytest.approx(t_quantile(0.975, 3) / 4)
    unpaired = interval(A, C)
    assert unpaired.se_seeds ** 2 == pytest.approx(1 / 144 + 1 / 144) and not unpaired.seeds_paired
    assert iv.to_dict()["method"].startswith("t interval: training variance of the per-seed differences")

    iv = interval(A, D, paired=True)
    assert iv.value == pytest.approx(1 / 4)
    assert iv.se_seeds ** 2 == pytest.approx(1 / 48) and iv.se_problems ** 2 == pytest.approx(11 / 432)
    total = 1 / 48 + 11 / 432
    assert iv.df == pytest.approx(total ** 2 / ((1 / 48) ** 2 / 2 + (11 / 432) ** 2 / 3))
    assert iv.hi - iv.value == pytest.approx(t_quantile(0.975, iv.df) * math.sqrt(total))


def test_pairing_turns_a_shared_seed_effect_into_a_detectable_difference():
    # five data orders that move both arms together by up to 5 points; B trails A by 1 point in each
    def arm(accs):
        return [[1] * round(1000 * a) + [0] * (1000 - round(1000 * a)) for a in accs]
    orders = [0.80, 0.78, 0.82, 0.77, 0.79]
    a, b = arm(orders), arm([x - 0.01 for x in orders])
    assert verdict(interval(a, b)) == "no detectable difference"
    assert verdict(interval(a, b, paired=True)) == "better"


@pytest.mark.parametrize("b", [None, [[1, 0, 1, 1]], B])
def test_pairing_needs_two_arms_with_as_many_seeds(b):
    with pytest.raises(ValueError, match="same number of seeds"):
        interval(A if b is not B else A[:1], b, paired=True)


def test_seed_noise_all_flips_hand_computed():
    # A: accuracies 3/4, 3/4, 1/2 -> observed variance 1/48. Pass rates 2/3, 1/3, 2/3, 1: sum p(1-p) = 2/3,
    # / 4^2 = 1/24, x 3/2 (unbiased) = 1/16 > 1/48: the flips explain it all, no training part.
    n = seed_noise(A)
    assert n.sd == pytest.approx(math.sqrt(1 / 48)) and n.sd_flips == pytest.approx(1 / 4)
    assert n.sd_training == 0.0 and (n.n_seeds, n.n_problems, n.n_disagree) == (3, 4, 3)


def test_seed_noise_training_part_hand_computed():
    # two seeds pass everything, one nothing: accuracies 1, 1, 0 -> variance 1/3. Every pass rate 2/3:
    # sum p(1-p) = 8/9, / 16 = 1/18, x 3/2 = 1/12 from flips; training 1/3 - 1/12 = 1/4.
    n = seed_noise([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert n.sd == pytest.approx(math.sqrt(1 / 3)) and n.sd_flips == pytest.approx(math.sqrt(1 / 12))
    assert n.sd_training == pytest.approx(1 / 2)
    # 5 seeds on 1000 problems: the flips' variance shrinks by 4/1000, the training part stays
    assert n.expected_spread(5, 1000) == pytest.approx(spread_factor(5) * math.sqrt(1 / 4 + 1 / 12 * 4 / 1000))
    d = n.to_dict()
    assert set(d["expected_spread_5_seeds"]) == {"4", "1000"}
    assert d["expected_spread_5_seeds"]["4"] == pytest.approx(spread_factor(5) * math.sqrt(1 / 3))
    assert format_noise(d) == "57.74 = 28.87 + 50.00 (134.3 / 116.4)"  # in points: here / on 1000 problems
    on_1000 = seed_noise([[1] * 1000, [0] * 1000]).to_dict()
    assert format_noise(on_1000).endswith("(164.5)")  # 1000 problems already: said once


@pytest.mark.parametrize("k,expected", [(2, 2 / math.sqrt(math.pi)), (3, 3 / math.sqrt(math.pi)), (5, 2.3259289)])
def test_spread_factor_is_the_expected_range_of_normals(k, expected):
    # E[range] of k standard normals: 2/sqrt(pi) and 3/sqrt(pi) exactly; 2.32593 for 5 (the d2 table)
    assert spread_factor(k) == pytest.approx(expected, abs=1e-6)


def test_seed_noise_needs_two_seeds_on_the_same_problems():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_noise([[1, 0]])
    with pytest.raises(ValueError, match="same problems"):
        seed_noise([[1, 0], [1]])


def test_runs_are_compared_on_the_problems_every_run_answered():
    ids, rows = on_shared([{"p2": 1.0, "p1": 0.0, "p3": 1.0}, {"p1": 1.0, "p2": 0.0}, {"p3": 0.0, "p2": 1.0, "p1": 1.0}])
    assert ids == ["p1", "p2"]
    assert rows == [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    assert on_shared([{"p1": 1.0}, {"p2": 1.0}]) == ([], [[], []])
