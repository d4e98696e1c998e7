"""Evaluation asks for the stop after the answer line in its greedy pass, only where the answer
line is the format the verifier reads."""

from __future__ import annotations

import dataclasses
import json

from reasondistill import io
from reasondistill.backends.base import Backend, Completion, SamplingParams
from reasondistill.config import EvalConfig, PromptConfig, VerifyConfig
from reasondistill.evaluate.runner import _draw_split, answer_line_format, evaluate
from reasondistill.records import Problem


class Recording(Backend):
    """Answers every problem right and writes down the sampling each problem was asked with."""

    name = identity = "recording"

    def __init__(self) -> None:
        self.seen: list[tuple[str, SamplingParams]] = []

    def complete(self, requests, sampling):
        self.seen += [(r.problem.id, sampling) for r in requests]
        return [Completion(f"Answer: {r.problem.answer}", "stop") for r in requests]


def _problems(n: int) -> list[Problem]:
    return [Problem(f"q{i}", "test", f"What is {i} + {i}?", str(2 * i), meta={"task": "chain_sum"})
            for i in range(n)]


def test_answer_line_format_follows_the_prompt_and_the_verifier() -> None:
    p = _problems(1)[0]
    assert answer_line_format(p, VerifyConfig(), PromptConfig())  # cot prompt, reasoning-gym verifier
    assert answer_line_format(p, VerifyConfig(verifier="exact"), None)
    assert not answer_line_format(p, VerifyConfig(), PromptConfig(style="pot"))  # a program's output


def test_greedy_pass_stops_at_the_answer_and_sampled_passes_do_not(tmp_path) -> None:
    path = tmp_path / "eval.jsonl"
    io.write_jsonl(path, _problems(3))
    backend = Recording()
    out = evaluate(EvalConfig(samples=2, max_new_tokens=16), VerifyConfig(), backend, path, tmp_path / "out",
                   model_name="m")
    assert out["outputs"]["accuracy"] == 1.0
    greedy = [s for _, s in backend.seen if s.temperature <= 0]
    sampled = [s for _, s in backend.seen if s.temperature > 0]
    assert len(greedy) == 3 and all(s.stop_at_answer for s in greedy)
    assert len(sampled) == 6 and not any(s.stop_at_answer for s in sampled)
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in rows if r["sample_idx"] == 0] == ["q0", "q1", "q2"]


def test_split_draw_sets_the_flag_per_request_and_keeps_input_order() -> None:
    from reasondistill.backends.base import Request

    backend = Recording()
    reqs = [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in _problems(4)]
    comps, counts = _draw_split(backend, reqs, SamplingParams(temperature=0.0), [True, False, True, False], None, "t")
    assert [c.text for c in comps] == ["Answer: 0", "Answer: 2", "Answer: 4", "Answer: 6"]
    assert {pid: s.stop_at_answer for pid, s in backend.seen} == {"q0": True, "q1": False, "q2": True, "q3": False}
    assert counts.made == 4
    assert dataclasses.replace(SamplingParams(), stop_at_answer=True) != SamplingParams()
