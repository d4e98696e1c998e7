"""A deterministic fake teacher for tests and offline pipeline checks.

It answers correctly for a configurable share of problems (decided by a hash of the
problem id and sample index), so verification, curation and STaR all get exercised
without any model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .base import Completion, Request, SamplingParams, Teacher
from .prompts import format_answer


class DummyTeacher(Teacher):
    name = "dummy"
    batch_size = 16

    def __init__(self, accuracy: float = 0.5, delay_s: float = 0.0) -> None:
        self.accuracy = accuracy
        self.delay_s = delay_s
        self.identity = f"dummy:acc={accuracy}"
        self.calls = 0

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
