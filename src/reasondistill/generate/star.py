"""STaR rationalization (``generate.rationalize``): the problems a teacher solved in none of its
first-pass samples are asked again with the gold answer as a hint (``prompts/rationalize.txt``, or
the style's own), ``generate.rationalize_samples`` times each; the traces are ``hinted``, so curation
trains them under the plain prompt. A problem without a gold answer has no hint to give."""

from __future__ import annotations

from typing import ClassVar

from ..config import GenerateConfig
from ..prompts import rationalize_prompt
from .base import Drawn, Mode, Pass, Sampling


class Rationalize(Mode):
    name: ClassVar[str] = "star"
    switch: ClassVar[str] = "generate.rationalize=true"

    def __init__(self, samples: int) -> None:
        self.samples = samples

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> Mode | None:
        return cls(cfg.rationalize_samples) if cfg.rationalize else None

    def follow_up(self, ctx: Sampling, drawn: Drawn) -> Pass | None:
        failed = [p for p in ctx.problems if p.id not in drawn.solved and p.answer.strip()]
        reqs = [ctx.request(p, rationalize_prompt(p, ctx.cfg.prompt), drawn.next_idx + j, hinted=True)
                for p in failed for j in range(self.samples)]
        desc = f"rationalize (STaR, {ctx.label})" if ctx.name else "rationalize (STaR)"
        return Pass(desc, reqs, width=self.samples, rationalized=True)
