"""A deterministic fake teacher for tests and offline pipeline checks.

It answers correctly for a configurable share of problems (decided by a hash of the
problem id and sample index), so verification, curation and STaR all get exercised
without any model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .base import Completion, Request, SamplingParams, Backend
from ..prompts import format_answer


@dataclass(frozen=True, slots=True)
class DummyOptions:
    accuracy: float = 0.5  # share of unhinted samples answered correctly
    delay_s: float = 0.0  # sleep per sample (tests of interruption and resume)


class DummyBackend(Backend):
    Options = DummyOptions
    name = "dummy"
    batch_size = 16

    def __init__(self, accuracy: float = 0.5, delay_s: float = 0.0) -> None:
        self.accuracy = accuracy
        self.delay_s = delay_s
        self.identity = self.identity_of(None, DummyOptions(accuracy, delay_s))
        self.calls = 0

    @classmethod
    def identity_of(cls, cfg, options) -> str:
        return f"dummy:acc={options.accuracy}"

    def _correct(self, req: Request) -> bool:
        if req.hinted:
            return True
        h = hashlib.sha256(f"{req.problem.id}:{req.sample_idx}".encode()).digest()
        return h[0] / 255.0 < self.accuracy

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        import time

        out = []
        for req in requests:
            self.calls += 1
            if self.delay_s:
                time.sleep(self.delay_s)
            answer = req.problem.answer if self._correct(req) else f"{req.problem.answer}0"
            text = f"Let me think about problem {req.problem.id} (sample {req.sample_idx}).\n{format_answer(answer)}"
            out.append(Completion(text=text, finish_reason="stop", prompt_tokens=10,
                                  completion_tokens=len(text.split())))
        return out
