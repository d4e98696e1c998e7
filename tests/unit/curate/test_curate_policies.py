import importlib

import pytest

from reasondistill.config import CurateConfig
from reasondistill.curate import INCORRECT, POLICIES, GroupPolicy, Policy, build_policies, judge
from reasondistill.curate.base import CurateContext, split
from reasondistill.curate.cap import Cap, preference_key
from reasondistill.curate.dedup import Dedup
from reasondistill.errors import ConfigError
from reasondistill.io import write_jsonl
from reasondistill.layout import Layout
from reasondistill.records import Problem, Trace, Verdict

from tests.helpers import curate_all_on, recipe

PROBLEM = Problem("p", "t", "q", "2")


def T(raw="Answer: 2", *, hinted=False, finish="stop", tid="t"):
    return Trace(id=tid, problem_id="p", teacher="d", sample_idx=0, reasoning="", answer_text="", raw=raw,
                 finish_reason=finish, hinted=hinted)


def V(passed=True):
    return Verdict(trace_id="t", problem_id="p", verifier="math", score=float(passed), passed=passed, reason="")


def names(cfg):
    return [p.name for p in build_policies(cfg)]


def test_table_entries_load_and_follow_the_contract(tiny_model_dir, tmp_path):
    layout = Layout(tmp_path)
    write_jsonl(layout.eval_problems, [Problem("e", "t", "something else entirely", "1")])
    for name, row in POLICIES.items():
        module, _, cls = row.policy.partition(":")
        klass = getattr(importlib.import_module(module), cls)
        # every policy on (this one first: longest excludes shortest); the band is inclusive so a
        # lone correct trace (pass rate 1) is in it
        policy = klass.from_config(curate_all_on(tiny_model_dir, first=name))
        assert policy is not None, f"{name}: its row's `on` settings do not switch it on"
        if hasattr(policy, "prepare"):
            policy.prepare(CurateContext(recipe(), layout, {"p": PROBLEM}, [T()], {"t": V()}))
        if isinstance(policy, GroupPolicy):  # per problem: keeps a lone good trace
            assert policy.select(PROBLEM, [T()], {"t": V()}) == ([T()], [])
        else:
            assert klass.name == name
            assert isinstance(policy, Policy)
            assert policy.keep(PROBLEM, T(), V()) == (True, "")


def test_config_switches_policies():
    assert names(CurateConfig()) == ["errored", "truncated", "correct", "formatted", "duplicate", "over_cap"]
    assert names(CurateConfig(include_hinted=False, drop_truncated=False, require_format=False, dedup=False)) == [
        "errored", "hinted", "correct", "over_cap"]


@pytest.mark.parametrize("trace,verdict,cfg,expected", [
    (T(), V(), {}, (True, "")),
    (T(finish="error"), V(), {}, (False, "generation_error")),
    (T(raw="  \n"), V(), {}, (False, "empty")),
    (T(finish="length"), V(), {}, (False, "truncated")),
    (T(finish="length"), V(), {"drop_truncated": False}, (True, "")),
    (T(finish="length"), V(False), {"drop_truncated": False}, (False, "truncated")),
    (T(), V(False), {}, (False, INCORRECT)),
    (T(hinted=True), V(), {}, (True, "")),
    (T(hinted=True), V(), {"include_hinted": False}, (False, "hinted")),
    (T(hinted=True), V(False), {"include_hinted": False}, (False, "hinted")),  # first refusal wins
    (T(raw="so it is 2"), V(), {}, (False, "unformatted")),
    (T(raw="so it is \\boxed{2}"), V(), {}, (True, "")),
    (T(raw="so it is 2"), V(), {"require_format": False}, (True, "")),
    (T(raw="so it is 3"), V(False), {}, (False, INCORRECT)),  # wrong beats unformatted: it is a negative
])
def test_judge(trace, verdict, cfg, expected):
    per_trace, _ = split(build_policies(CurateConfig(**cfg)))
    assert judge(per_trace, PROBLEM, trace, verdict) == expected


def test_judge_accepts_bare_bool_policies():
    class No:
        name = "no"

        def keep(self, problem, trace, verdict):
            return False

    assert judge([No()], PROBLEM, T(), V()) == (False, "no")


def test_dedup_keeps_first_of_each_text():
    a, b, c = T("x  y", tid="a"), T("X y\n", tid="b"), T("x z", tid="c")
    kept, dupes = Dedup().select(PROBLEM, [a, b, c], {})
    assert [t.id for t in kept] == ["a", "c"] and [(t.id, why) for t, why in dupes] == [("b", "duplicate")]


def test_cap_prefers_unhinted_then_short_then_early():
    traces = [T("long answer text", tid="u_long"), T("short", tid="u_short"), T("x", hinted=True, tid="h"),
              T("short", tid="u_short2")]
    ranked = sorted(traces, key=lambda t: preference_key(t, traces.index(t)))
    assert [t.id for t in ranked] == ["u_short", "u_short2", "u_long", "h"]
    kept, over = Cap(2).select(PROBLEM, ranked, {})
    assert [t.id for t in kept] == ["u_short", "u_short2"] and [why for _, why in over] == ["over_cap"] * 2


def test_curate_config_validation():
    with pytest.raises(ConfigError):
        CurateConfig(max_per_problem=0)
