"""Pull the gold final answer out of a dataset's worked solution.

Datasets store the answer inside a rationale: GSM8K ends with ``#### 72``, MATH-style sets
wrap it in ``\\boxed{..}``. Parsing happens once, at load time, so every later stage compares
against a short string. (Normalising *model outputs* is the verifier's job, not this file's.)
"""

from __future__ import annotations

import re

FORMATS = ("auto", "gsm8k", "boxed", "raw")

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def parse_gsm8k(text: str) -> str | None:
    """Text after the last ``####``, with thousands commas removed ("1,000" -> "1000")."""
    if "####" not in text:
        return None
    answer = _THOUSANDS.sub("", text.rsplit("####", 1)[1].strip())
    return answer or None


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the ``{...}`` group opening at ``text[start]`` and the index after it."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":  # \{ and \} are literal braces in LaTeX
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
        i += 1
    return None


def parse_boxed(text: str) -> str | None:
    """Content of the last top-level ``\\boxed{..}`` / ``\\fbox{..}`` (braces balanced).

    Boxes nested inside an earlier box are skipped, so ``\\boxed{\\boxed{1}}`` gives
    ``\\boxed{1}``. The brace-less form ``\\boxed 5`` is accepted too.
    """
    found: str | None = None
    pos = 0
    while (m := _BOX.search(text, pos)) is not None:
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            group = _braced(text, j)
            if group is None:  # unbalanced: nothing usable from here on
                break
            found, pos = group[0].strip(), group[1]
        elif j > m.end():  # "\boxed 5"
            token = re.match(r"[^\s$]+", text[j:])
            found = token.group(0) if token else found
            pos = j + (token.end() if token else 0)
        else:
            pos = j
    return found or None


def detect_format(text: str) -> str:
    """``auto``: gsm8k if ``####`` is present, else boxed if a box is, else raw."""
    if "####" in text:
        return "gsm8k"
    if _BOX.search(text):
        return "boxed"
    return "raw"


def parse_answer(text: str, answer_format: str = "auto") -> tuple[str | None, str]:
    """Return ``(answer or None if unparseable, format actually used)``."""
    fmt = detect_format(text) if answer_format == "auto" else answer_format
    if fmt == "gsm8k":
        return parse_gsm8k(text), fmt
    if fmt == "boxed":
        return parse_boxed(text), fmt
    if fmt == "raw":
        return (text.strip() or None), fmt
    raise ValueError(f"unknown answer format {answer_format!r}; expected one of {', '.join(FORMATS)}")
