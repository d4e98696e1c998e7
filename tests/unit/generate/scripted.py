"""A scripted teacher/student for the SSB and tailored-learning tests: what it answers depends only
on the problem id, the sample index and which prompt it was given, so every survivor and pair is
known in advance.

Plain prompts follow ``PLAIN[problem_id][sample_idx % len]``: ``c`` the gold answer, ``x`` gold + 1,
``y`` gold + 2, ``?`` no answer at all. A hinted prompt (SSB, STaR) and a tailored prompt are
answered correctly, with text that names the prompt kind, so a test can tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasondistill.backends.base import Backend, Completion, Request, SamplingParams
from reasondistill.prompts import format_answer

PLAIN = {"p0": "ccc", "p1": "xxx", "p2": "xyy", "p3": "cxc", "p4": "c??"}
PROBLEMS = [(pid, f"What is {i} + 10?", str(i + 10)) for i, pid in enumerate(PLAIN)]


def kind(req: Request) -> str:
    text = req.messages[-1]["content"]
    if "A common wrong answer is" in text:
        return "ssb"
    if "A student answered" in text:
        return "tailored"
    if "The correct answer is" in text:
        return "star"
    return "plain"


class ScriptedBackend(Backend):
    name = "scripted"
    identity = "scripted:v1"
    batch_size = 4

    def __init__(self, tokenizer=None, top_k: int = 0) -> None:
        self.seen: list[tuple[str, str, int, str]] = []  # (problem id, kind, sample index, prompt)
        self.tokenizer, self.top_k = tokenizer, top_k

    def text(self, req: Request) -> str:
        gold = int(req.problem.answer)
        how = kind(req)
        if how != "plain":
            return f"{how} {req.problem.id} {req.sample_idx}: add the numbers.\n{format_answer(str(gold))}"
        mark = PLAIN[req.problem.id][req.sample_idx % len(PLAIN[req.problem.id])]
        if mark == "?":
            return "I am not sure how to add these."  # no digits: no fallback answer either
        answer = gold + {"c": 0, "x": 1, "y": 2}[mark]
        return f"plain {req.problem.id} {req.sample_idx}: add them.\n{format_answer(str(answer))}"

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        out = []
        for req in requests:
            self.seen.append((req.problem.id, kind(req), req.sample_idx, req.messages[-1]["content"]))
            text = self.text(req)
            logprobs = None
            if self.tokenizer is not None and sampling.top_logprobs:
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                # the sampled token first, then made-up alternatives: known values to find in the store
                logprobs = [{"id": t, "top": [[t, -0.25]] + [[(t + j) % 1000, -2.0 - j]
                                                            for j in range(1, sampling.top_logprobs)]}
                            for t in ids]
            out.append(Completion(text=text, finish_reason="stop", prompt_tokens=len(req.messages[-1]["content"]),
                                  completion_tokens=len(text.split()), logprobs=logprobs))
        return out
