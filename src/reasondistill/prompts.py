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

from .config import PromptConfig
from .errors import ConfigError
from .records import Problem

ANSWER_PREFIX = "Answer:"


@lru_cache(maxsize=32)
def _read_template(path: str | None, builtin: str) -> str:
    if path is None:
        return (resources.files("reasondistill") / "prompts" / builtin).read_text(encoding="utf-8")
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"prompt template not found: {p}")
    text = p.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not part of the prompt
    if "{question}" not in text:
        raise ConfigError(f"prompt template {p} has no {{question}} placeholder")
    return text


def render(template: str, **values: str) -> str:
    # str.replace, not str.format: problem text may contain braces (LaTeX, code)
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out.strip()


def template_text(cfg: PromptConfig, problem: Problem | None = None) -> str:
    """The question template text ``cfg`` names (a file, or the built-in one for its style); with no
    template file and the cot style, ``problem``'s task row may bring its own (``Task.prompt``)."""
    if cfg.template is None and cfg.style == "cot" and problem is not None:
        from .tasks import task_of

        if (task := task_of(problem)) is not None and task.prompt is not None:
            return _task_template(task.prompt)
    return _read_template(cfg.template, f"{cfg.style}.txt")


@lru_cache(maxsize=32)
def _task_template(target: str) -> str:
    from .registry import load

    text = load(target)
    if "{question}" not in text:
        raise ConfigError(f"the task prompt {target} has no {{question}} placeholder")
    return text


def cot_prompt(problem: Problem, cfg: PromptConfig) -> str:
    return render(template_text(cfg, problem), question=problem.prompt)


def rationalize_prompt(problem: Problem, cfg: PromptConfig) -> str:
    builtin = "rationalize.txt" if cfg.style == "cot" else f"{cfg.style}_rationalize.txt"
    text = _read_template(cfg.rationalize_template, builtin)
    return render(text, question=problem.prompt, hint=problem.answer)


def ssb_prompt(problem: Problem, wrong: str, cfg: PromptConfig) -> str:
    """SSB (semantic soft bootstrapping): the question with its gold answer and the student's most
    common wrong answer; the rationale it yields is trained under the plain prompt."""
    return render(_read_template(cfg.ssb_template, "ssb.txt"), question=problem.prompt, hint=problem.answer,
                  wrong=wrong)


def tailored_prompt(problem: Problem, student: str, cfg: PromptConfig) -> str:
    """Tailored learning: the question with the student's wrong solution, for a fresh rationale
    (the gold answer is not shown; verification decides whether the correction is right)."""
    return render(_read_template(cfg.tailored_template, "tailored.txt"), question=problem.prompt, student=student)


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


def few_shot_messages(demos: list[Problem], cfg: PromptConfig) -> list[dict[str, str]]:
    """Worked examples as earlier turns: a program solver's rationale where one exists,
    else the dataset's own solution text (e.g. GSM8K), else an error."""
    from .solvers import get_solver, has_solver

    messages: list[dict[str, str]] = []
    for p in demos:
        task = p.meta.get("task", "")
        if has_solver(task):
            reasoning, answer = get_solver(task)(p)
        elif p.meta.get("solution"):
            reasoning, answer = p.meta["solution"].split("####")[0].strip(), p.answer
        else:
            raise ConfigError(f"few-shot prompting needs worked solutions; problem {p.id} has none "
                              f"(set generate.prompt.few_shot=0)")
        messages += [{"role": "user", "content": cot_prompt(p, cfg)},
                     {"role": "assistant", "content": f"{reasoning}\n{format_answer(answer)}"}]
    return messages


def teacher_prefix(prompt_cfg: PromptConfig, backend: str, train_problems: list[Problem]) -> list[dict[str, str]]:
    """The few-shot turns an LLM teacher sees before each question, in generation and in its own
    evaluation alike: worked examples of the first ``few_shot`` training problems. A program
    teacher needs none."""
    if not prompt_cfg.few_shot or backend == "program":
        return []
    return few_shot_messages(train_problems[: prompt_cfg.few_shot], prompt_cfg)
