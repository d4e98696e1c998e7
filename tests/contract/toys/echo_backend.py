"""Toy backend for the contract tests: answers every problem with its gold answer after a fixed
line of reasoning. One file; the test adds its row to ``BACKENDS``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasondistill.backends.base import Backend, Completion, Request, SamplingParams
from reasondistill.prompts import format_answer


@dataclass(frozen=True, slots=True)
class EchoOptions:
    reasoning: str = "I add the numbers."


class EchoBackend(Backend):
    Options = EchoOptions
    name = "echo"
    batch_size = 4

    def __init__(self, reasoning: str = EchoOptions.reasoning) -> None:
        self.reasoning = reasoning
        self.identity = self.identity_of(None, EchoOptions(reasoning))

    @classmethod
    def identity_of(cls, cfg, options) -> str:
        return f"echo:{options.reasoning}"

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        out = []
        for req in requests:
            text = f"{self.reasoning}\n{format_answer(req.problem.answer)}"
            out.append(Completion(text=text, finish_reason="stop", completion_tokens=len(text.split())))
        return out
