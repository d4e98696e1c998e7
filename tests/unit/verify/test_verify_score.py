"""score_text: verifier choice, wall-clock timeout, errors, threads, reasoning-gym entries from JSON."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import pytest

from reasondistill.config import VerifyConfig
from reasondistill.errors import ConfigError
from reasondistill.records import Problem
from reasondistill.grading import VERIFIERS, Score, Verifier, get_verifier, pick_verifier, score_text
from reasondistill.grading import base as verify_base
from reasondistill.grading.base import call_with_timeout


def P(answer, meta=None, pid="p1"):
    return Problem(id=pid, source="test", prompt="q?", answer=answer, meta=meta or {})


@dataclass(frozen=True)
class SlowVerifier:
    name: ClassVar[str] = "slow"
    fallback_last_number: bool = True

    def check(self, problem, text):
        time.sleep(5)
        return Score(1.0, True, "x", True, "correct")


@dataclass(frozen=True)
class BrokenVerifier:
    name: ClassVar[str] = "broken"
    fallback_last_number: bool = True

    def check(self, problem, text):
        raise RuntimeError("kaboom")


@pytest.fixture
def fake_verifiers(monkeypatch):
    monkeypatch.setitem(VERIFIERS, "exact", f"{__name__}:SlowVerifier")
    monkeypatch.setitem(VERIFIERS, "math", f"{__name__}:BrokenVerifier")
    verify_base._instance.cache_clear()
    yield
    verify_base._instance.cache_clear()


def test_timeout_returns_a_failed_score_quickly(fake_verifiers):
    start = time.monotonic()
    score = score_text(P("yes"), "Answer: yes", VerifyConfig(verifier="exact", timeout_s=0.2))
    assert time.monotonic() - start < 2.0
    assert score == Score(0.0, False, "yes", True, "timeout")


def test_verifier_exception_becomes_error_score(fake_verifiers):
    score = score_text(P("3"), "Answer: 3", VerifyConfig(verifier="math"))
    assert not score.passed and score.score == 0.0
    assert score.reason.startswith("error: RuntimeError: kaboom")
    assert score.extracted == "3" and score.formatted


def test_call_with_timeout_passes_results_and_errors_through():
    assert call_with_timeout(lambda: Score(1.0, True, "1", True, "correct"), 5).passed
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, 5)
    with pytest.raises(TimeoutError):
        call_with_timeout(lambda: time.sleep(2), 0.05)


def test_math_scoring_works_off_the_main_thread():
    # math-verify's signal-based timeouts would raise here; ours must not
    problem = P("\\frac{1}{2}")
    cfg = VerifyConfig(verifier="math")
    texts = ["Answer: 0.5", "Answer: 2^{-1}", "Answer: 1/3", "Answer: \\sqrt{1/4}"]
    results = {}

    def worker():
        results["thread"] = threading.current_thread() is not threading.main_thread()
        results["scores"] = [score_text(problem, t, cfg) for t in texts]

    t = threading.Thread(target=worker)
    t.start()
    t.join(60)
    assert results["thread"]
    assert [s.passed for s in results["scores"]] == [True, True, False, True]
    assert all(not s.reason.startswith("error") for s in results["scores"])
    with ThreadPoolExecutor(4) as pool:
        assert all(s.passed for s in pool.map(lambda t: score_text(problem, t, cfg), ["Answer: 0.5"] * 8))


@pytest.mark.parametrize("answer,meta,expected", [
    ("42", {}, "math"),
    ("-1,234", {}, "math"),
    ("\\frac{1}{2}", {}, "math"),
    ("2x+1", {}, "math"),
    ("(1, 2)", {}, "math"),
    ("yes", {}, "exact"),
    ("2 apples", {}, "exact"),
    ("Paris", {}, "exact"),
    ("5", {"task": "chain_sum"}, "reasoning_gym"),
    ("5", {"rg_entry": {"question": "q", "answer": "5", "metadata": {"source_dataset": "chain_sum"}}},
     "reasoning_gym"),
    ("5", {"task": "not-a-reasoning-gym-task"}, "math"),
])
def test_pick_verifier(answer, meta, expected):
    assert pick_verifier(P(answer, meta)) == expected


def test_get_verifier_contract_and_errors():
    for name in VERIFIERS:
        v = get_verifier(name)
        assert isinstance(v, Verifier) and v.name == name
        assert get_verifier(name) is v  # shared, stateless
    with pytest.raises(ConfigError, match="unknown verifier .* 'nope' .*available: math"):
        get_verifier("nope")
    with pytest.raises(ConfigError, match="needs a problem"):
        get_verifier("auto")


def test_fallback_last_number_can_be_switched_off():
    assert score_text(P("15"), "so 15", VerifyConfig(fallback_last_number=False)).reason == "no_answer"
    assert score_text(P("15"), "so 15", VerifyConfig(fallback_last_number=True)).passed


def test_verify_config_validation():
    with pytest.raises(ConfigError):
        VerifyConfig(timeout_s=0)
    from reasondistill.config import Recipe
    from reasondistill.pipeline import check_recipe

    with pytest.raises(ConfigError, match="unknown verifier .*'fuzzy'.*available: auto, math"):  # the table's names
        check_recipe(Recipe(verify=VerifyConfig(verifier="fuzzy")))


def _rg_problem(task, seed, size, index, *, full_meta):
    import reasoning_gym

    entry = reasoning_gym.create_dataset(task, seed=seed, size=size)[index]
    meta = {"task": task, "rg_entry": entry}
    if full_meta:
        meta.update(task_config={}, rg_seed=seed, rg_size=size, rg_index=index)
    meta = json.loads(json.dumps(meta))  # what the verify stage reads back from problems.jsonl
    return Problem(id=f"{task}-{index}", source=f"reasoning_gym:{task}", prompt=entry["question"],
                   answer=entry["answer"], meta=meta), entry


def test_reasoning_gym_entry_is_regenerated_for_tuple_comparing_tasks():
    problem, entry = _rg_problem("rearc", 0, 2, 1, full_meta=True)
    assert "\n" in entry["answer"]  # a grid: written as a block after a bare "Answer:" line
    score = score_text(problem, f"Let me apply the rule.\nAnswer:\n{entry['answer']}\n\nDone.")
    assert score.passed and score.score == 1.0, score


def test_reasoning_gym_with_only_the_stored_entry():
    problem, entry = _rg_problem("chain_sum", 3, 5, 0, full_meta=False)
    assert score_text(problem, f"Answer: {entry['answer']}").passed
    assert not score_text(problem, f"Answer: {int(entry['answer']) + 1}").passed


def test_reasoning_gym_unknown_task_is_an_error_score():
    problem = P("5", {"rg_entry": {"question": "q", "answer": "5", "metadata": {}}, "task": "no_such_task"})
    score = score_text(problem, "Answer: 5", VerifyConfig(verifier="reasoning_gym"))
    assert not score.passed and score.reason.startswith("error: ValueError")


def test_a_timed_out_check_does_not_delay_the_next_one():
    # the hung check keeps its worker; the next check runs at once on a fresh one, and the
    # worker is reused afterwards (one thread, not one per check)
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        call_with_timeout(lambda: time.sleep(1.5), 0.05)
    assert call_with_timeout(lambda: Score(1.0, True, "1", True, "correct"), 1).passed
    assert time.perf_counter() - started < 1.0
    names = lambda: sum(t.name == "reasondistill-verify" for t in threading.enumerate())  # noqa: E731
    before = names()
    for _ in range(50):
        call_with_timeout(lambda: Score(1.0, True, "1", True, "correct"), 1)
    assert names() == before
