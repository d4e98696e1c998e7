"""Program of thought through the generate stage: each completion's program runs in the sandbox,
its printed output becomes the answer line, and programs that misbehave become failed traces while
the stage goes on; verify then checks the output, and curate drops the failed ones."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reasondistill import curate, generate, verify
from reasondistill.backends import BackendPool
from reasondistill.backends.base import Backend, Completion, Request, SamplingParams
from reasondistill.config import (CurateConfig, GenerateConfig, PromptConfig, SandboxConfig, BackendConfig,
                                  VerifyConfig)
from reasondistill.errors import ConfigError
from reasondistill.io import iter_jsonl, read_records, write_jsonl
from reasondistill.prompts import cot_prompt, rationalize_prompt
from reasondistill.records import Problem, Trace

from tests.helpers import recipe, stage_layout

PROGRAMS = {
    "good": "a, b = 2, 3\nprint(a + b)",
    "network": "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\nprint(5)",
    "outside": "open('/tmp/reasondistill-pot-escape.txt', 'w').write('x')\nprint(5)",
    "fork": "import os\nwhile True:\n    os.fork()",
    "memory": "x = bytearray(10 * 1024 ** 3)\nprint(5)",
    "forever": "while True:\n    pass",
    "silent": "x = 5",
}


class ProgramWriter(Backend):
    """A fake LLM teacher: for problem ``<kind>`` it writes the program ``PROGRAMS[kind]``, then (to
    show it is ignored) a wrong answer of its own; ``none`` gets prose without a program."""

    name = "writer"
    identity = "writer:v1"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        out = []
        for req in requests:
            self.prompts.append(req.messages[-1]["content"])
            kind = req.problem.id
            if kind == "none":
                text = "I just know it.\nAnswer: 5"
            else:
                text = f"I compute it.\n```python\n{PROGRAMS[kind]}\n```\nAnswer: 6"
            out.append(Completion(text=text, finish_reason="stop", completion_tokens=len(text.split())))
        return out


@pytest.fixture
def pot_run(tmp_path):
    problems = [Problem(k, "t", "What is 2 + 3?", "5") for k in [*PROGRAMS, "none"]]
    write_jsonl(tmp_path / "problems.jsonl", problems)
    gen = GenerateConfig(samples=1, rationalize=True, cache_dir=str(tmp_path / "cache"),
                         prompt=PromptConfig(style="pot"),
                         sandbox=SandboxConfig(timeout_s=3.0, cpu_s=1, memory_mb=256, workers=2))
    tcfg = BackendConfig(backend="dummy")
    teacher = ProgramWriter()
    pool = BackendPool()
    pool.add(tcfg, teacher)
    r = recipe(teacher=tcfg, generate=gen, verify=VerifyConfig(), curate=CurateConfig())
    with pool:
        m = generate.run(r, stage_layout(tmp_path / "gen", "generate", train_problems=tmp_path / "problems.jsonl"),
                         pool=pool)
    traces = {t.problem_id: t for t in read_records(tmp_path / "gen" / "traces.jsonl", Trace) if not t.hinted}
    return tmp_path, r, m, traces, teacher


def test_programs_run_and_misbehaving_ones_fail(pot_run):
    tmp_path, _, m, traces, teacher = pot_run
    good = traces["good"]
    assert good.finish_reason == "stop" and good.style == "pot"
    assert good.raw == f"I compute it.\n```python\n{PROGRAMS['good']}\n```\nAnswer: 5"  # the teacher's "6" is gone
    assert good.answer_text == "5" and good.meta["pot"]["program"] == PROGRAMS["good"]
    assert good.meta["pot"]["output"] == "5\n" and good.meta["pot"]["ok"]
    expected = {"network": "blocked", "outside": "blocked", "fork": "blocked", "memory": "memory_limit",
                "forever": "cpu_limit", "silent": "no_output", "none": "no_program"}
    for kind, reason in expected.items():
        t = traces[kind]
        assert t.finish_reason == "error" and not t.meta["pot"]["ok"], kind
        # an endless loop is stopped by the CPU limit, or by the wall clock on a busy machine
        stopped = ("cpu_limit", "killed", "timeout") if kind == "forever" else (reason,)
        assert t.meta["pot"]["reason"] in stopped, kind
        assert t.raw == "" and t.meta["pot"]["text"].startswith("I "), kind  # the teacher's own answer cannot pass
    assert traces["network"].meta["pot"]["detail"].startswith("socket")
    import os
    assert not os.path.exists("/tmp/reasondistill-pot-escape.txt")
    pot = m["outputs"]["pot"]
    assert pot["programs"] == m["outputs"]["n_traces"] and pot["outcomes"]["ok"] == 1
    assert pot["isolation"] in ("unshare -n + audit hook", "audit hook")
    # prompts ask for a program; failed problems were re-asked with the PoT hint template
    assert "Python program" in teacher.prompts[0]
    assert m["outputs"]["n_hinted"] == len(expected) and "The correct answer is 5" in teacher.prompts[-1]


def test_verify_checks_the_output_and_curate_drops_failed_programs(pot_run):
    tmp_path, r, _, traces, _ = pot_run
    layout = stage_layout(tmp_path / "run", "verify", train_problems=tmp_path / "problems.jsonl",
                          traces=tmp_path / "gen" / "traces.jsonl")
    verify.run(r, layout)
    verdicts = {o["trace_id"]: o for _, o in iter_jsonl(tmp_path / "run" / "verdicts.jsonl")}
    assert verdicts[traces["good"].id]["passed"]
    assert not any(verdicts[traces[k].id]["passed"] for k in traces if k != "good")
    layout = stage_layout(tmp_path / "cur", "curate", train_problems=tmp_path / "problems.jsonl",
                          traces=tmp_path / "gen" / "traces.jsonl", verdicts=tmp_path / "run" / "verdicts.jsonl")
    m = curate.run(r, layout)
    kept = [o["meta"]["trace_id"] for _, o in iter_jsonl(tmp_path / "cur" / "train.jsonl")]
    assert kept == [traces["good"].id]
    assert m["outputs"]["counts"]["dropped"]["generation_error"] == 2 * 7  # the unhinted and the hinted tries


def test_pot_prompts_and_config():
    p = Problem("x", "t", "What is 2 + 3?", "5")
    assert "```python" in cot_prompt(p, PromptConfig(style="pot"))
    assert "The correct answer is 5" in rationalize_prompt(p, PromptConfig(style="pot"))
    assert "Python" not in cot_prompt(p, PromptConfig())
    with pytest.raises(ConfigError, match="few_shot"):
        PromptConfig(style="pot", few_shot=2)
    with pytest.raises(ConfigError):
        SandboxConfig(network="none")


def test_extract_program():
    from reasondistill.generate.pot import extract_program

    assert extract_program("```py\nprint(1)\n```\nrest")[0] == "print(1)"
    assert extract_program("text\n```\nprint(2)\n```")[0] == "print(2)"
    assert extract_program("```python\nprint(3)")[0] == "print(3)"  # cut off by the token limit: run as is
    assert extract_program("no code here") is None and extract_program("```js\nx\n```") is None
