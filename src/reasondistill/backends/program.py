"""The program teacher: a deterministic solver writes the rationale (program-aided,
symbolic distillation). It is always right on the tasks it knows (unless told to slip), costs
no model calls, and fits the same contract as an LLM teacher.

``teacher.options`` picks how it writes (see :mod:`reasondistill.solvers.styles`): ``style``
(steps, terse, verbose, varied: several distinct rationales, one per sample index) and
``wrong_share``, the share of unhinted samples with one plausible slip (negatives for preference
objectives), chosen by a hash of (``seed``, problem, sample) so re-runs and caches agree. Each
trace records what it got in ``meta``: ``program_style``, ``variant`` and ``slipped``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from .base import Completion, Request, SamplingParams, Backend
from ..errors import ConfigError
from ..prompts import format_answer
from ..solvers import get_solver, has_solver, solver_styles
from ..solvers.styles import STYLES, Style, slip_seed

VERSION = "1"  # bump when a solver's wording changes: it is part of the cache identity


@dataclass(frozen=True, slots=True)
class ProgramOptions:
    style: str = "steps"  # steps | terse | verbose | varied | digits | columns
    wrong_share: float = 0.0  # share of unhinted samples with one plausible slip (0: every trace is right)
    seed: int = 0  # which samples slip, and where

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"teacher.options.style: unknown style {self.style!r} (choose from {', '.join(STYLES)})")
        if not 0.0 <= self.wrong_share <= 1.0:
            raise ConfigError(f"teacher.options.wrong_share: must be between 0 and 1, got {self.wrong_share}")


class ProgramBackend(Backend):
    Options = ProgramOptions
    name = "program"
    batch_size = 256

    def __init__(self, style: str = "steps", wrong_share: float = 0.0, seed: int = 0) -> None:
        self.options = ProgramOptions(style, wrong_share, seed)
        self.identity = self.identity_of(None, self.options)

    @classmethod
    def identity_of(cls, cfg, options) -> str:
        """``program:v1`` for the default style (so existing caches and manifests stay valid), with
        the non-default options after it."""
        extra = "" if options == ProgramOptions() else \
            f":style={options.style}:wrong={options.wrong_share}:seed={options.seed}"
        return f"program:v{VERSION}{extra}"

    def _style(self, req: Request) -> Style:
        opts = self.options
        h = slip_seed(req.problem.id, req.sample_idx, opts.seed)
        slips = not req.hinted and opts.wrong_share > 0 and (h % 10_000) < opts.wrong_share * 10_000
        return Style(opts.style, variant=req.sample_idx, slip=h // 10_000 if slips else None)

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        out = []
        for req in requests:
            task = req.problem.meta.get("task", "")
            style = self._style(req)
            if has_solver(task) and style.name not in solver_styles(task):
                raise ConfigError(f"teacher.options.style: the {task} solver writes only "
                                  f"{', '.join(solver_styles(task))}, not {style.name!r}")
            try:
                solver = get_solver(task)
                takes_style = len(inspect.signature(solver).parameters) > 1
                reasoning, answer = solver(req.problem, style) if takes_style else solver(req.problem)
            except Exception as e:  # noqa: BLE001 - a failed solve is a failed trace, not a crash
                out.append(Completion(text="", finish_reason="error", meta={"error": f"{type(e).__name__}: {e}"}))
                continue
            text = f"{reasoning}\n{format_answer(answer)}"
            meta = {"program_style": style.name, "slipped": style.slip is not None}
            if style.name == "varied":
                meta["variant"] = style.variant
            out.append(Completion(text=text, finish_reason="stop", completion_tokens=len(text.split()), meta=meta))
        return out

    @staticmethod
    def supports(task: str) -> bool:
        return has_solver(task)
