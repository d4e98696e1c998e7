import json

import pytest
import reasoning_gym as rg

from reasondistill.config import VerifyConfig
from reasondistill.records import Problem
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.program import ProgramBackend
from reasondistill.solvers.arithmetic import steps
from reasondistill.grading import score_text


@pytest.mark.parametrize("expr,expected", [
    ("5 - 3 - 6", ["5 - 3 - 6", "2 - 6", "-4"]),
    ("2 - -1", ["2 - -1", "3"]),
    ("(3 + 4) * 2 - 10 / 4", ["(3 + 4) * 2 - 10 / 4", "7 * 2 - 10 / 4", "14 - 10 / 4", "14 - 2.5", "11.5"]),
    ("-5 * (2 + 3 * (1 + 1))", ["-5 * (2 + 3 * (1 + 1))", "-5 * (2 + 3 * 2)", "-5 * (2 + 6)", "-5 * 8", "-40"]),
])
def test_arithmetic_steps(expr, expected):
    lines, _ = steps(expr)
    assert lines == expected


def rg_problems(task, n, **cfg):
    ds = rg.create_dataset(task, seed=3, size=n, **cfg)
    return [Problem(f"{task}-{i}", f"reasoning_gym:{task}", e["question"], str(e["answer"]),
                    {"task": task, "rg_entry": json.loads(json.dumps(e, default=list))}) for i, e in enumerate(ds)]


@pytest.mark.parametrize("task,cfg", [
    ("chain_sum", {"min_terms": 2, "max_terms": 5, "min_digits": 1, "max_digits": 3}),
    ("basic_arithmetic", {}),
    ("leg_counting", {}),
])
def test_program_teacher_is_verified_correct_on_real_tasks(task, cfg):
    probs = rg_problems(task, 40, **cfg)
    outs = ProgramBackend().complete([Request(p, (), 0) for p in probs], SamplingParams())
    scores = [score_text(p, o.text, VerifyConfig()) for p, o in zip(probs, outs)]
    assert all(o.finish_reason == "stop" for o in outs)
    assert all(s.passed and s.formatted for s in scores), [(p.answer, o.text) for p, o, s in
                                                          zip(probs, outs, scores) if not s.passed][:3]


def test_unknown_task_is_an_error_trace_not_a_crash():
    p = Problem("x", "s", "q", "1", {"task": "nope"})
    [out] = ProgramBackend().complete([Request(p, (), 0)], SamplingParams())
    assert out.finish_reason == "error" and "no solver" in out.meta["error"]
