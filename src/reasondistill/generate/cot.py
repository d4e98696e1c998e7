"""Chain of thought (``generate.prompt.style: cot``, the default): the teacher reasons in text and
ends with an ``Answer:`` line; its completions are the traces as they are."""

from __future__ import annotations

from typing import ClassVar

from ..config import GenerateConfig, PromptConfig
from ..prompts import cot_prompt
from ..records import Problem
from .base import Mode


class ChainOfThought(Mode):
    name: ClassVar[str] = "cot"
    switch: ClassVar[str] = "generate.prompt.style=cot"
    style: ClassVar[bool] = True

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> Mode | None:
        return cls() if cfg.prompt.style == cls.name else None

    def prompt(self, problem: Problem, cfg: PromptConfig) -> str:
        return cot_prompt(problem, cfg)
