"""Gold-answer parsing: GSM8K markers, balanced \\boxed{}, auto detection."""

import json
from pathlib import Path

import pytest

from reasondistill.problems.gold import detect_format, parse_answer, parse_boxed, parse_gsm8k

GSM8K = Path(__file__).parents[2] / "fixtures" / "gsm8k"  # the first rows of the real splits


@pytest.mark.parametrize("text, expected", [
    ("3 + 4 = 7\n#### 7", "7"),
    ("so 1,000 total\n#### 1,000", "1000"),
    ("#### 1,234,567", "1234567"),
    ("#### -2,500.75", "-2500.75"),
    ("a #### 3 then\n#### 4", "4"),  # the last marker wins
    ("#### 12,34", "12,34"),  # not a thousands separator
    ("no marker here: 5", None),
    ("####   ", None),
])
def test_gsm8k(text, expected):
    assert parse_gsm8k(text) == expected


def test_gsm8k_real_file_first_rows():
    with (GSM8K / "train.jsonl").open() as fh:
        rows = [json.loads(next(fh)) for _ in range(3)]
    assert [parse_gsm8k(r["answer"]) for r in rows] == ["72", "10", "5"]


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{42}.", "42"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"first \boxed{1} then \boxed{x^{2} + \{a\}}", r"x^{2} + \{a\}"),
    (r"\boxed{\left\{ x > 1 \right.}", r"\left\{ x > 1 \right."),  # escaped braces are literal
    (r"\fbox{7}", "7"),
    (r"\boxed{\boxed{3}}", r"\boxed{3}"),  # outermost of the last box
    (r"$\boxed 5$", "5"),
    (r"\boxed{1} and \boxed{2", "1"),  # the unbalanced tail is ignored
    (r"\boxedfoo{3}", None),
    ("nothing", None),
    (r"\boxed{}", None),
])
def test_boxed(text, expected):
    assert parse_boxed(text) == expected


@pytest.mark.parametrize("text, fmt, answer", [
    ("work\n#### 1,000", "gsm8k", "1000"),
    (r"so $\boxed{\sqrt{2}}$", "boxed", r"\sqrt{2}"),
    ("  17 ", "raw", "17"),
])
def test_auto_detection(text, fmt, answer):
    assert detect_format(text) == fmt
    assert parse_answer(text, "auto") == (answer, fmt)


def test_explicit_format_overrides_detection():
    assert parse_answer(r"\boxed{3}", "raw") == (r"\boxed{3}", "raw")
    assert parse_answer("42", "gsm8k") == (None, "gsm8k")
