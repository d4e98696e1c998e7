"""The program teacher's styles: exact rationales, several distinct correct ones per problem, short
vs long, and a controlled share of plausible wrong traces."""

import json
import random
import re

import pytest
import reasoning_gym as rg

from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.program import ProgramBackend, ProgramOptions
from reasondistill.config import VerifyConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.solvers.arithmetic import solve
from reasondistill.solvers.styles import Calc, Style
from reasondistill.grading import score_text
from fractions import Fraction as F

P = Problem(id="x", source="t", prompt="12 - 5 + 3 =", answer="10", meta={"task": "chain_sum", "expression": "12 - 5 + 3"})


@pytest.mark.parametrize("style,expected", [
    (Style("steps"), "12 - 5 + 3\n= 7 + 3\n= 10"),
    (Style("terse"), "12 - 5 = 7, 7 + 3 = 10"),
    (Style("verbose"), "We need the value of 12 - 5 + 3. We work one operation at a time, from left to right.\n"
                       "Step 1: 12 - 5 = 7, so the expression becomes 7 + 3.\n"
                       "Step 2: 7 + 3 = 10, so the expression becomes 10.\n"
                       "Check each step backwards: 10 - 3 = 7, 7 + 5 = 12.\n"
                       "Every step checks out, so the value is 10."),
    (Style("varied", 0), "From left to right:\n12 - 5 = 7\n7 + 3 = 10"),
    (Style("varied", 1), "Add the positive terms: 12 + 3 = 15.\nAdd the amounts to subtract: 5.\nSubtract: 15 - 5 = 10."),
    (Style("varied", 2), "From right to left, starting with 3:\n(-5) + 3 = -2\n12 - 2 = 10"),
    (Style("varied", 3), "Split each number into its last digit and the rest.\nThe rest: 10 + 0 = 10, 10 + 0 = 10.\n"
                         "The last digits: 2 - 5 = -3, (-3) + 3 = 0.\nTogether: 10 + 0 = 10."),
])
def test_exact_rationales(style, expected):
    assert solve(P, style) == (expected, "10")


def test_digits_moves_one_place_value_per_operation():
    def digits(expr, slip=None):
        return solve(Problem(id="d", source="t", prompt=expr, answer="", meta={"task": "chain_sum", "expression": expr}),
                     Style("digits", slip=slip))
    assert digits("98 + 93 - 77") == ("98 + 93 - 77\n= 98 + 90 + 3 - 77\n= 188 + 3 - 77\n= 191 - 77\n"
                                      "= 191 - 70 - 7\n= 121 - 7\n= 114", "114")
    assert digits("15 - 43") == ("15 - 43\n= 15 - 40 - 3\n= -25 - 3\n= -28", "-28")
    assert digits("40 + 7 - 30") == ("40 + 7 - 30\n= 47 - 30\n= 17", "17")  # nothing to split: steps
    assert solve(P, Style("digits")) == solve(P, Style("steps"))  # one-digit operands: steps
    # a slip lands on one written operation (here the second of four: 188 + 3) and carries on
    assert digits("98 + 93 - 77", slip=1) == ("98 + 93 - 77\n= 98 + 90 + 3 - 77\n= 188 + 3 - 77\n= 192 - 77\n"
                                              "= 192 - 70 - 7\n= 122 - 7\n= 115", "115")


def columns(expr, slip=None):
    return solve(Problem(id="d", source="t", prompt=expr, answer="", meta={"task": "chain_sum", "expression": expr}),
                 Style("columns", slip=slip))


def test_columns_works_each_operation_digit_by_digit():
    assert columns("98 + 93 - 77") == (
        "98 + 93 - 77\n"
        "98 + 93: ones 8 + 3 = 11, carry 1; tens 9 + 9 + 1 = 19; so 191\n= 191 - 77\n"
        "191 - 77: ones 1 - 7: borrow, 11 - 7 = 4; tens 9 - 7 - 1 = 1; hundreds 1; so 114\n= 114", "114")
    # below zero: the sign rule first, then the columns of the positive difference
    assert columns("15 - 43") == ("15 - 43\n15 - 43 = -(43 - 15). 43 - 15: ones 3 - 5: borrow, 13 - 5 = 8; "
                                  "tens 4 - 1 - 1 = 2; so -28\n= -28", "-28")
    assert columns("5 - 9 + 3") == ("5 - 9 + 3\n5 - 9 = -(9 - 5) = -4\n= -4 + 3\n-4 + 3 = -(4 - 3) = -1\n= -1", "-1")
    assert columns("-25 - 8")[0].splitlines()[1] == "-25 - 8 = -(25 + 8). 25 + 8: ones 5 + 8 = 13, carry 1; tens 2 + 1 = 3; so -33"
    # a borrow through a zero
    assert columns("105 - 97")[0].splitlines()[1] == ("105 - 97: ones 5 - 7: borrow, 15 - 7 = 8; "
                                                      "tens 0 - 9 - 1: borrow, 10 - 9 - 1 = 0; hundreds 1 - 1 = 0; so 8")
    # a slipped operation is worked right and concluded wrong (op 0 off by +1), and carried on
    assert columns("98 + 93 - 77", slip=0)[0].splitlines()[1:3] == [
        "98 + 93: ones 8 + 3 = 11, carry 1; tens 9 + 9 + 1 = 19; so 192", "= 192 - 77"]
    assert columns("98 + 93 - 77", slip=0)[1] == "115"


def test_columns_every_written_fact_is_true():
    rng = random.Random(0)
    for _ in range(500):
        terms = [rng.randint(0, 999) for _ in range(rng.randint(2, 4))]
        expr = str(terms[0]) + "".join(f" {rng.choice('+-')} {t}" for t in terms[1:])
        text, answer = columns(expr)
        assert int(answer) == eval(expr)
        facts = re.findall(r"(?<![\d-])(\d+(?: [-+] \d+)+) = (-?\d+)", text)
        assert facts and all(eval(lhs) == int(rhs) for lhs, rhs in facts), expr
        assert all(line.endswith(f"so {v}") for line, v in zip(text.splitlines()[1::2], re.findall(r"^= (-?\d+)", text, re.M))
                   if ": ones" in line)


@pytest.mark.parametrize("style,expected,answer", [
    (Style("steps", slip=0), "12 - 5 + 3\n= 8 + 3\n= 11", "11"),  # op 0 off by +1, carried on
    (Style("terse", slip=1), "12 - 5 = 7, 7 + 3 = 11", "11"),  # op 1 off by +1
    (Style("terse", slip=2 * 2 + 1), "12 - 5 = 7, 7 + 3 = 20", "20"),  # op 1 off by +10
])
def test_a_slip_is_one_wrong_operation_carried_to_the_end(style, expected, answer):
    assert solve(P, style) == (expected, answer)


def test_calc_applies_the_slip_once_and_records_it():
    calc = Calc(n_ops=3, slip=1 + 3 * 1)  # op 1, second size (-1)
    assert [calc(F(1), "+", F(1)), calc(F(2), "+", F(2)), calc(F(3), "*", F(2))] == [2, 3, 6]
    assert [o.slipped for o in calc.ops] == [False, True, False] and calc.slipped


def rg_problems(n, **cfg):
    ds = rg.create_dataset("chain_sum", seed=5, size=n, **cfg)
    return [Problem(f"c{i}", "reasoning_gym:chain_sum", e["question"], str(e["answer"]),
                    {"task": "chain_sum", "rg_entry": json.loads(json.dumps(e, default=list))}) for i, e in enumerate(ds)]


HARD = {"min_terms": 4, "max_terms": 6, "min_digits": 2, "max_digits": 3}


def draw(options: ProgramOptions, problems, samples=1, hinted=False):
    backend = ProgramBackend(options.style, options.wrong_share, options.seed)
    reqs = [Request(p, (), i, hinted=hinted) for p in problems for i in range(samples)]
    return reqs, backend.complete(reqs, SamplingParams())


@pytest.mark.parametrize("style", ["steps", "terse", "verbose", "varied", "digits"])
def test_every_style_is_right_on_real_problems(style):
    problems = rg_problems(30, **HARD)
    reqs, outs = draw(ProgramOptions(style), problems, samples=4)
    assert all(score_text(r.problem, o.text, VerifyConfig()).passed for r, o in zip(reqs, outs))
    assert all(o.meta["program_style"] == style and not o.meta["slipped"] for o in outs)


def test_varied_writes_four_distinct_correct_rationales_per_problem():
    problems = rg_problems(20, **HARD)
    _, outs = draw(ProgramOptions("varied"), problems, samples=4)
    for i in range(len(problems)):
        texts = {o.text for o in outs[4 * i: 4 * i + 4]}
        assert len(texts) == 4
    assert [o.meta["variant"] for o in outs[:4]] == [0, 1, 2, 3]


def test_verbose_costs_three_to_five_times_the_tokens_of_terse(smollm2_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    problems = rg_problems(50, **HARD)
    lengths = {}
    for style in ("terse", "verbose"):
        _, outs = draw(ProgramOptions(style), problems)
        lengths[style] = sum(len(tok(o.text)["input_ids"]) for o in outs)
    assert 3.0 <= lengths["verbose"] / lengths["terse"] <= 5.0, lengths


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_wrong_share_is_controlled_and_every_slip_is_wrong(share):
    problems = rg_problems(100, **HARD)
    reqs, outs = draw(ProgramOptions("varied", wrong_share=share, seed=1), problems, samples=4)
    slipped = [o.meta["slipped"] for o in outs]
    assert abs(sum(slipped) / len(slipped) - share) < 0.06
    for r, o in zip(reqs, outs):
        passed = score_text(r.problem, o.text, VerifyConfig()).passed
        assert passed != o.meta["slipped"], o.text
    again = draw(ProgramOptions("varied", wrong_share=share, seed=1), problems, samples=4)[1]
    assert [o.text for o in again] == [o.text for o in outs]  # deterministic: caches and re-runs agree
    other = draw(ProgramOptions("varied", wrong_share=share, seed=2), problems, samples=4)[1]
    assert [o.meta["slipped"] for o in other] != slipped


def test_hinted_samples_never_slip():
    _, outs = draw(ProgramOptions("terse", wrong_share=1.0), rg_problems(10, **HARD), hinted=True)
    assert not any(o.meta["slipped"] for o in outs)


def test_identity_keeps_the_default_and_names_other_options():
    assert ProgramBackend().identity == "program:v1"
    assert ProgramBackend("terse").identity != ProgramBackend("verbose").identity != "program:v1"
    assert ProgramBackend("terse", 0.2, 0).identity != ProgramBackend("terse", 0.2, 1).identity


@pytest.mark.parametrize("kwargs,needle", [({"style": "fancy"}, "teacher.options.style"),
                                          ({"wrong_share": 1.5}, "teacher.options.wrong_share")])
def test_bad_options_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        ProgramOptions(**kwargs)


def test_a_solver_without_the_style_is_refused_by_name():
    ds = rg.create_dataset("leg_counting", seed=1, size=1)
    p = Problem("l0", "rg", ds[0]["question"], str(ds[0]["answer"]),
                {"task": "leg_counting", "rg_entry": json.loads(json.dumps(ds[0], default=list))})
    with pytest.raises(ConfigError, match="leg_counting solver writes only steps"):
        ProgramBackend("terse").complete([Request(p, (), 0)], SamplingParams())
