"""Prompt building, shared by teachers, curation and evaluation.

The student is trained and evaluated on exactly the messages ``student_messages``
builds, so the final-answer format it learns is the one evaluation checks.
Rationalization (STaR) prompts show the gold answer as a hint; the resulting
traces are trained under the plain prompt, without the hint.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..config import PromptConfig
from ..errors import ConfigError
from ..records import Problem

ANSWER_PREFIX = "Answer:"


@lru_cache(maxsize=32)
def _read_template(path: str | None, builtin: str) -> str:
    if path is None:
        return (resources.files("reasondistill") / "prompts" / builtin).read_text(encoding="utf-8")
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"prompt template not found: {p}")
    text = p.read_text(encoding="utf-8")
    if "{question}" not in text:
        raise ConfigError(f"prompt template {p} has no {{question}} placeholder")
    return text


def render(template: str, **values: str) -> str:
    # str.replace, not str.format: problem text may contain braces (LaTeX, code)
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out.strip()


def cot_prompt(problem: Problem, cfg: PromptConfig) -> str:
    return render(_read_template(cfg.template, f"{cfg.style}.txt"), question=problem.prompt)


def rationalize_prompt(problem: Problem, cfg: PromptConfig) -> str:
    text = _read_template(cfg.rationalize_template, "rationalize.txt")
    return render(text, question=problem.prompt, hint=problem.answer)


def student_messages(problem: Problem, cfg: PromptConfig | None = None) -> list[dict[str, str]]:
    """The conversation the student is trained and evaluated on (no hint, no few-shot)."""
    return [{"role": "user", "content": cot_prompt(problem, cfg or PromptConfig())}]


def with_task_prefix(messages: list[dict[str, str]], prefix: str | None) -> list[dict[str, str]]:
    """``messages`` with ``prefix`` put before the last user message: how a multi-task student
    (``train/multitask.py``) is told which task to do, in training and at evaluation alike."""
    out = [dict(m) for m in messages]
    if not prefix:
        return out
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = prefix + m.get("content", "")
            return out
    raise ValueError("a task prefix needs a user message to go on")


def format_answer(answer: str) -> str:
    """The final-answer line; a multi-line answer (a grid) starts on the next line."""
    return f"{ANSWER_PREFIX}\n{answer}" if "\n" in answer else f"{ANSWER_PREFIX} {answer}"
