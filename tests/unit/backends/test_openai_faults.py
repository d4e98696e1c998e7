"""Every fault of the fake server, driven through the real generate stage: each case ends with
every row present, completed or as an ``error`` trace that the next run retries, nothing
duplicated. The fault table is printed at the end of the module (``pytest -s``) and written to
the JSON file named by ``$REASONDISTILL_FAULT_TABLE`` when set.

Each retryable fault is run twice: *transient* (the first request of one problem meets it,
the retry succeeds) and *persistent* (every request of that problem meets it until the
server heals; the rows come out as error traces, then a re-run of the stage in the same
folder pays only for them)."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from reasondistill import generate, io
from reasondistill.config import GenerateConfig, BackendConfig, VerifyConfig
from reasondistill.records import Problem
from tests.helpers import recipe, stage_layout

N_PROBLEMS, SAMPLES = 4, 2
ROWS = N_PROBLEMS * SAMPLES
TARGET = "What is 11 + 21?"  # problem p1: the one the faults hit
MAX_RETRIES = 2
RETRYABLE = ["429", "429-retry-after", "500", "503", "hang", "reset", "malformed", "no-choices"]
ANSWERED = ["empty", "length"]  # not failures: the server's answer, kept as it is

TABLE: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def fault_table():
    yield TABLE
    if not TABLE:
        return
    cols = ["case", "mode", "server requests for the row", "first run", "re-run", "rows lost", "duplicates"]
    lines = [" | ".join(cols), " | ".join("---" for _ in cols)]
    lines += [" | ".join(str(row[c]) for c in cols) for row in TABLE]
    print("\n\nOpenAI backend fault table (generate stage, %d rows, fault on %d of them)\n" % (ROWS, SAMPLES))
    print("\n".join(lines))
    if path := os.environ.get("REASONDISTILL_FAULT_TABLE"):
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(TABLE, fh, indent=1)


def setup(tmp_path, fake_openai):
    problems = tmp_path / "problems.jsonl"
    io.write_jsonl(problems, [Problem(f"p{i}", "t", f"What is {10 + i} + {20 + i}?", str(30 + 2 * i))
                              for i in range(N_PROBLEMS)])
    fake_openai.hang_s = 1.0
    tcfg = BackendConfig(backend="openai", model="fake-model", batch_size=3,
                         options={"base_url": fake_openai.url, "timeout_s": 0.3, "max_retries": MAX_RETRIES,
                                  "backoff_s": 0.02, "concurrency": 4})
    gen = GenerateConfig(samples=SAMPLES, rationalize=False, temperature=0.7, max_new_tokens=32,
                         cache_dir=str(tmp_path / "cache"))
    rec = recipe(teacher=tcfg, generate=gen, verify=VerifyConfig())
    layout = stage_layout(tmp_path / "gen", "generate", train_problems=problems)
    return rec, layout, tmp_path / "cache"


def rows(layout) -> list[dict]:
    return [o for _, o in io.iter_jsonl(layout.traces)]


def cache_keys(cache_dir) -> list[str]:
    keys = []
    for f in cache_dir.glob("*.jsonl"):
        keys += [o["key"] for _, o in io.iter_jsonl(f) if "key" in o]
    return keys


def check_complete(traces: list[dict], cache_dir) -> tuple[int, int]:
    """(rows lost, duplicated rows or cache keys); asserts both are zero."""
    expected = {f"p{i}/openai:fake-model/s{s}" for i in range(N_PROBLEMS) for s in range(SAMPLES)}
    ids = [t["id"] for t in traces]
    lost = len(expected - set(ids))
    dupes = sum(n - 1 for n in Counter(ids).values()) + sum(n - 1 for n in Counter(cache_keys(cache_dir)).values())
    assert lost == 0 and dupes == 0, (lost, dupes)
    return lost, dupes


def summary(traces: list[dict]) -> str:
    mine = [t for t in traces if t["problem_id"] == "p1"]
    kinds = Counter(t["finish_reason"] if t["raw"] or t["finish_reason"] == "error" else "stop (empty text)"
                    for t in mine)
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


@pytest.mark.parametrize("kind", RETRYABLE)
def test_transient_fault_is_retried_within_the_run(kind, tmp_path, fake_openai):
    rec, layout, cache = setup(tmp_path, fake_openai)
    fake_openai.fault(kind, match=TARGET, times=1)
    m = generate.run(rec, layout)
    traces = rows(layout)
    assert all(t["finish_reason"] == "stop" and t["raw"] for t in traces), summary(traces)
    assert m["outputs"]["n_errors"] == 0 and m["outputs"]["teacher_calls"] == ROWS
    sent = len(fake_openai.requests_for(TARGET))
    assert sent == SAMPLES + 1  # one extra request: the retry
    lost, dupes = check_complete(traces, cache)
    assert len(cache_keys(cache)) == ROWS
    assert generate.run(rec, layout)["this_run"]["skipped"]
    TABLE.append({"case": kind, "mode": "transient (1st request)", "server requests for the row": sent,
                  "first run": f"retried: {summary(traces)}", "re-run": "skipped (nothing to retry)",
                  "rows lost": lost, "duplicates": dupes})


@pytest.mark.parametrize("kind", RETRYABLE)
def test_persistent_fault_leaves_error_traces_that_a_rerun_completes(kind, tmp_path, fake_openai):
    rec, layout, cache = setup(tmp_path, fake_openai)
    fake_openai.fault(kind, match=TARGET, times=None)
    m = generate.run(rec, layout)
    traces = rows(layout)
    errors = [t for t in traces if t["finish_reason"] == "error"]
    assert len(traces) == ROWS and len(errors) == SAMPLES and {t["problem_id"] for t in errors} == {"p1"}
    assert all(t["meta"]["attempts"] == MAX_RETRIES + 1 and t["meta"]["error"] for t in errors)
    assert m["outputs"]["n_errors"] == SAMPLES
    assert len(cache_keys(cache)) == ROWS - SAMPLES  # errors are not cached
    sent = len(fake_openai.requests_for(TARGET))
    assert sent == SAMPLES * (MAX_RETRIES + 1)
    first = f"{summary(traces)} ({errors[0]['meta']['error'][:60]})"

    fake_openai.clear()  # the server heals; the same call again, same folder
    m2 = generate.run(rec, layout)
    assert not m2["this_run"]["skipped"]
    assert m2["outputs"]["teacher_calls"] == SAMPLES and m2["outputs"]["cached_teacher_calls"] == ROWS - SAMPLES
    traces = rows(layout)
    assert all(t["finish_reason"] == "stop" for t in traces) and m2["outputs"]["n_errors"] == 0
    lost, dupes = check_complete(traces, cache)
    assert len(cache_keys(cache)) == ROWS
    m3 = generate.run(rec, layout)  # finished now: skipped
    assert m3["this_run"]["skipped"]
    TABLE.append({"case": kind, "mode": "persistent (until healed)", "server requests for the row": sent,
                  "first run": first, "re-run": f"{m2['outputs']['teacher_calls']} requests, "
                                                f"{m2['outputs']['cached_teacher_calls']} cached: {summary(traces)}",
                  "rows lost": lost, "duplicates": dupes})


@pytest.mark.parametrize("kind", ANSWERED)
def test_empty_and_truncated_answers_are_kept_as_answered(kind, tmp_path, fake_openai):
    rec, layout, cache = setup(tmp_path, fake_openai)
    fake_openai.fault(kind, match=TARGET, times=None)
    m = generate.run(rec, layout)
    traces = rows(layout)
    mine = [t for t in traces if t["problem_id"] == "p1"]
    if kind == "empty":
        assert all(t["raw"] == "" and t["finish_reason"] == "stop" for t in mine)
    else:
        assert all(t["finish_reason"] == "length" and t["usage"]["completion_tokens"] == 3 for t in mine)
    assert m["outputs"]["n_errors"] == 0 and len(fake_openai.requests_for(TARGET)) == SAMPLES
    lost, dupes = check_complete(traces, cache)
    assert len(cache_keys(cache)) == ROWS  # the server's answer: cached, verify and curate judge it
    assert generate.run(rec, layout)["this_run"]["skipped"]
    TABLE.append({"case": kind, "mode": "every request", "server requests for the row": SAMPLES,
                  "first run": f"answered: {summary(traces)}", "re-run": "skipped (cached answers)",
                  "rows lost": lost, "duplicates": dupes})
