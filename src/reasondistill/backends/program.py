"""The program teacher: a deterministic solver writes the rationale (program-aided,
symbolic distillation). It is always right on the tasks it knows, costs no model
calls, and fits the same contract as an LLM teacher.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Completion, Request, SamplingParams, Backend
from ..prompts import format_answer
from ..solvers import SOLVERS, get_solver

VERSION = "1"  # bump when a solver's wording changes: it is part of the cache identity


class ProgramBackend(Backend):
    name = "program"
    identity = f"program:v{VERSION}"
    batch_size = 256

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        out = []
        for req in requests:
            task = req.problem.meta.get("task", "")
            try:
                reasoning, answer = get_solver(task)(req.problem)
            except Exception as e:  # noqa: BLE001 - a failed solve is a failed trace, not a crash
                out.append(Completion(text="", finish_reason="error", meta={"error": f"{type(e).__name__}: {e}"}))
                continue
            text = f"{reasoning}\n{format_answer(answer)}"
            out.append(Completion(text=text, finish_reason="stop", completion_tokens=len(text.split())))
        return out

    @staticmethod
    def supports(task: str) -> bool:
        return task in SOLVERS
