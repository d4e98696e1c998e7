import pytest

from reasondistill.grading.answers import as_number, extract_answer, last_boxed, last_number, normalize


@pytest.mark.parametrize("text,expected", [
    ("Answer: 42", ("42", True)),
    ("answer: 42", ("42", True)),
    ("ANSWER : 42.", ("42", True)),
    ("Answer: $42$", ("42", True)),
    ("**Answer:** 42", ("42", True)),
    ("**Answer**: 42", ("42", True)),
    ("## Final Answer: 3.5.", ("3.5", True)),
    ("Answer: \\boxed{7}.", ("7", True)),
    ("Answer:\n\n  17\n", ("17", True)),
    ("Answer: 1\nthen\nAnswer: 2\n", ("2", True)),
    ("\\boxed{1} and later \\boxed{\\frac{2}{3}}", ("\\frac{2}{3}", True)),
    ("\\boxed 5", ("5", True)),
    ("x = -3", ("-3", False)),
    ("pages 3-4", ("4", False)),
    ("total 1,234 apples", ("1,234", False)),
    ("ratio is 3/4", ("3/4", False)),
    ("2.5 then 1,2,3", ("3", False)),
    ("we get 2.5.", ("2.5", False)),
    ("no numbers", (None, False)),
    ("", (None, False)),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_without_fallback():
    assert extract_answer("the result is 12", fallback_last_number=False) == (None, False)
    assert extract_answer("Answer: 12", fallback_last_number=False) == ("12", True)


def test_answer_word_inside_a_sentence_is_not_a_final_answer_line():
    assert extract_answer("The answer: it depends on 5 things") == ("5", False)
    assert extract_answer("my answer is 5") == ("5", False)


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{12}", "12"),
    ("a \\boxed{1} b \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\text{{x}}}", "\\text{{x}}"),
    ("\\boxed{unbalanced", None),
    ("\\fbox{3}", "3"),
    ("nothing", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize("raw,expected", [
    (" $1,234.0$. ", "1234"),
    ("+5", "5"),
    ("2.50", "2.5"),
    ("3.0", "3"),
    ("-0", "0"),
    ("  Yes  ", "yes"),
    ("New   York", "new york"),
    ("**42**", "42"),
    ("1,2,3", "1,2,3"),  # a list, not a thousands-separated number
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("3/4", (3, 4)), ("\\frac{3}{4}", (3, 4)), ("-\\dfrac{1}{2}", (-1, 2)), ("0.75", (3, 4)),
    ("1,234", (1234, 1)), ("1/0", None), ("x", None), ("2x", None),
])
def test_as_number(raw, expected):
    got = as_number(raw)
    assert (None if got is None else (got.numerator, got.denominator)) == expected


def test_last_number():
    assert last_number("a -1.5 b 2,000") == "2,000"
    assert last_number("none") is None
