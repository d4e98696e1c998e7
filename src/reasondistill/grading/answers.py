"""Answer extraction and normalisation: the one place that knows what a final answer looks like.

Teachers, verifiers and evaluation all call these functions, so a trace is trained on the same
notion of "the answer" that evaluation later checks (lm-eval copies ``last_boxed_only_string``
into eight files; this module exists so we never do).

Precedence in :func:`extract_answer`:

1. the LAST final-answer line, ``Answer: X`` (case-insensitive, optional ``Final``, markdown
   ``**`` / ``#`` / ``>`` decorations allowed; the prompt asks for this format). A bare
   ``Answer:`` line takes the following block of non-blank lines, so multi-line answers
   (grids) are written as ``Answer:\\n<row>\\n<row>``;
2. else the LAST ``\\boxed{X}`` (balanced braces);
3. else, when ``fallback_last_number``, the last number in the text (``formatted=False``).
"""

from __future__ import annotations

import re
from fractions import Fraction

# A final-answer line: "Answer: 42", "**Final Answer:** 42", "## Answer**: 42", "> answer: 42".
_ANSWER_LINE = re.compile(r"^[ \t>*_#-]*(?:final[ \t]+)?answer[ \t*_]*[:\uff1a][ \t]*(.*)$",
                          re.IGNORECASE | re.MULTILINE)

# A number in running text: -3, 1,234, 2.5, 3/4, 1,234.50. A minus counts only when it is not
# a hyphen between words/numbers ("pages 3-4" gives 4, "x = -4" gives -4).
_NUMBER = re.compile(
    r"(?:(?<![\w)\]])-)?(?<![\d.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?")

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_COMMA_NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SIGNED = re.compile(r"\+\d+(?:\.\d+)?(?:/\d+)?")
_DECIMAL = re.compile(r"-?\d+\.\d*")
_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)")
_LATEX_FRACTION = re.compile(r"(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, else None.

    ``\\boxed 5`` (no braces) gives ``5``. An unbalanced last box gives None.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (len("\\boxed") if text.startswith("\\boxed", start) else len("\\fbox"))
    if i < len(text) and text[i] == " ":
        m = re.match(r" +([^\s$]+)", text[i:])
        return m.group(1) if m else None
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def clean_answer(s: str) -> str:
    """Remove markdown emphasis, math delimiters, a box and a trailing full stop, repeatedly."""
    prev = None
    while s != prev:
        prev = s
        s = s.strip()
        for mark in ("**", "__"):
            if s.startswith(mark):
                s = s[len(mark):]
            if s.endswith(mark):
                s = s[:-len(mark)]
        s = s.strip()
        if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
            s = s.strip("$")
        elif s.startswith("\\(") and s.endswith("\\)") or s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
        if s.startswith(("\\boxed", "\\fbox")) and (inner := last_boxed(s)) is not None:
            s = inner
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1]
    return s.strip()


def _answer_line(text: str) -> str | None:
    last = None
    for last in _ANSWER_LINE.finditer(text):
        pass
    if last is None:
        return None
    rest = last.group(1).strip()
    if not rest:  # "Answer:\n1 2\n3 4": the answer is the next block of non-blank lines (grids)
        block = []
        for line in text[last.end():].lstrip("\n\r").splitlines():
            if not line.strip():
                if block:
                    break
                continue
            block.append(line.strip())
        rest = "\n".join(block)
    if "\\boxed" in rest or "\\fbox" in rest:
        rest = last_boxed(rest) or rest
    return rest


def answer_line_end(text: str) -> int | None:
    """Where the first complete final-answer line ends (the index of its newline), else None.

    Complete: an ``Answer: X`` line with a non-empty value, and the newline after it already
    written. A bare ``Answer:`` (a multi-line answer follows) never ends here. A generation
    stopped at its answer keeps ``text[:end]``, whose last answer line is this one."""
    for m in _ANSWER_LINE.finditer(text):
        if m.end() < len(text) and clean_answer(m.group(1)):
            return m.end()
    return None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands commas kept), or None."""
    found = None
    for found in _NUMBER.finditer(text):
        pass
    return found.group(0) if found else None


def extract_answer(text: str, *, fallback_last_number: bool = True) -> tuple[str | None, bool]:
    """``(answer, formatted)`` for a model output; see the module docstring for precedence.

    ``formatted`` is True only when an ``Answer:`` line or a ``\\boxed{}`` was found.
    """
    if not text:
        return None, False
    line = _answer_line(text)
    if line is not None:
        ans = clean_answer(line)
        if ans:
            return ans, True
    boxed = last_boxed(text)
    if boxed is not None:
        ans = clean_answer(boxed)
        if ans:
            return ans, True
    if fallback_last_number:
        num = last_number(text)
        if num is not None:
            return num, False
    return None, False


def normalize(ans: str) -> str:
    """Canonical string form for comparison: ``" $1,234.0$. "`` -> ``"1234"``, ``"+5"`` -> ``"5"``.

    Strips whitespace, markdown and ``$`` wrappers and a trailing full stop; lowercases;
    collapses inner whitespace; in numbers drops thousands commas, a ``+`` sign and trailing
    decimal zeros (``2.50`` -> ``2.5``, ``3.0`` -> ``3``).
    """
    s = clean_answer(str(ans)).lower()
    s = re.sub(r"\s+", " ", s)
    if _COMMA_NUMBER.fullmatch(s):
        s = s.replace(",", "")
    if _SIGNED.fullmatch(s):
        s = s[1:]
    if _DECIMAL.fullmatch(s):
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", "-0/1"):
        s = "0"
    return s


def as_number(ans: str) -> Fraction | None:
    """The exact value of a plain numeric answer (``-3``, ``2.5``, ``3/4``, ``\\frac{3}{4}``), else None."""
    s = normalize(ans)
    try:
        if _PLAIN_NUMBER.fullmatch(s):
            return Fraction(s)
        if m := _FRACTION.fullmatch(s):
            den = Fraction(m.group(2))
            return Fraction(m.group(1)) / den if den else None
        if m := _LATEX_FRACTION.fullmatch(s.replace(" ", "")):
            den = int(m.group(3))
            if not den:
                return None
            value = Fraction(int(m.group(2)), den)
            return -value if m.group(1) else value
    except (ValueError, ZeroDivisionError):
        return None
    return None


def is_integer_literal(ans: str) -> bool:
    """True for answers that normalise to a plain integer (``"1,234"``, ``"+7"``, ``"-3"``)."""
    return re.fullmatch(r"-?\d+", normalize(ans)) is not None
