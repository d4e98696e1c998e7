"""The OpenAI-compatible HTTP backend against the fake server (``tests/fake_openai.py``):
options, identity, request bodies, concurrency, retries, Retry-After, logprobs, the API key."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import pytest

from reasondistill import io
from reasondistill.backends import backend_options, build_backend
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.openai import OpenAIBackend, OpenAIOptions, parse_retry_after
from reasondistill.backends.sampling import draw
from reasondistill.config import GenerateConfig, BackendConfig
from reasondistill.errors import ConfigError
from reasondistill.logprobs import from_completion_logprobs
from reasondistill.records import Problem

from tests.helpers import recipe, stage_layout

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=32)


def run_generate(tcfg, gen, verify, problems, out):
    from reasondistill import generate

    return generate.run(recipe(teacher=tcfg, generate=gen, verify=verify),
                        stage_layout(out, "generate", train_problems=problems))


def write_problems(path, n=12):
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"What is {i} + 1?", str(i + 1)) for i in range(n)])
    return path


def reqs(n: int, samples: int = 1) -> list[Request]:
    probs = [Problem(f"p{i}", "t", f"What is {10 + i} + {20 + i}?", str(30 + 2 * i)) for i in range(n)]
    return [Request(p, ({"role": "user", "content": p.prompt},), s) for p in probs for s in range(samples)]


def backend(server, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend("fake-model", base_url=server.url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- options and identity ----

@pytest.mark.parametrize("options, message", [
    ({"endpoint": "responses"}, "endpoint"),
    ({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"concurrency": 0}, "concurrency"),
    ({"max_retries": -1}, "max_retries"),
    ({"api_key_env": "sk-abc123"}, "not the key"),
    ({"api_key": "sk-abc123"}, "unknown recipe key 'teacher.options.api_key'"),
])
def test_options_are_checked_before_anything_connects(options, message):
    with pytest.raises(ConfigError, match=message):
        backend_options(BackendConfig(backend="openai", options=options))


def test_identity_needs_no_network_and_never_holds_the_key(monkeypatch):
    monkeypatch.setenv("RD_TEST_KEY", "sk-secret-identity")
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    cfg = BackendConfig(backend="openai", model="m1", options={"base_url": url + "/", "api_key_env": "RD_TEST_KEY"})
    opts = backend_options(cfg)
    ident = OpenAIBackend.identity_of(cfg, opts)
    assert ident == f"openai:chat:m1@{url}" and "secret" not in ident
    built = build_backend(cfg)  # builds without connecting
    assert built.identity == ident and "secret" not in repr(built) and built.name == "openai:m1"
    same = OpenAIOptions(base_url=url, model="m1", timeout_s=3, max_retries=0, concurrency=1)
    assert OpenAIBackend.identity_of(None, same) == ident  # timeouts, retries, concurrency change no sample
    for other in (OpenAIOptions(base_url=url, model="m2"), OpenAIOptions(base_url=url, model="m1", endpoint="completions"),
                  OpenAIOptions(base_url=url.replace("/v1", "/v2"), model="m1"),
                  OpenAIOptions(base_url=url, model="m1", extra_body={"top_k": 5})):
        assert OpenAIBackend.identity_of(None, other) != ident
    userinfo = OpenAIOptions(base_url=url.replace("http://", "http://user:pw@"), model="m1")
    assert OpenAIBackend.identity_of(None, userinfo) == ident


def test_a_missing_key_variable_fails_at_build_naming_it(monkeypatch):
    monkeypatch.delenv("RD_TEST_KEY_MISSING", raising=False)
    with pytest.raises(ConfigError, match="RD_TEST_KEY_MISSING.*not set"):
        build_backend(BackendConfig(backend="openai", options={"api_key_env": "RD_TEST_KEY_MISSING"}))


def test_request_body_has_only_openai_fields(fake_openai):
    b = backend(fake_openai, extra_body={"top_k": 7})
    r = reqs(1)[0]
    greedy = b.body(r, GREEDY)
    assert set(greedy) == {"model", "messages", "max_tokens", "temperature", "seed", "top_k"}
    assert greedy["temperature"] == 0.0 and greedy["max_tokens"] == 32 and greedy["top_k"] == 7
    sampled = b.body(r, SamplingParams(temperature=0.7, top_p=0.9, stop=("\n\n",), top_logprobs=3))
    assert sampled["top_p"] == 0.9 and sampled["stop"] == ["\n\n"]
    assert sampled["logprobs"] is True and sampled["top_logprobs"] == 3
    other_sample = b.body(Request(r.problem, r.messages, 1), SamplingParams(temperature=0.7))
    assert other_sample["seed"] != b.body(r, SamplingParams(temperature=0.7))["seed"]  # samples differ...
    assert b.body(r, SamplingParams(temperature=0.7))["seed"] == b.body(r, SamplingParams(temperature=0.7))["seed"]
    plain = backend(fake_openai, endpoint="completions", send_seed=False).body(r, SamplingParams(top_logprobs=2))
    assert plain["prompt"] == "What is 10 + 20?\n" and plain["logprobs"] == 2 and "seed" not in plain


# ---- answers ----

@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_complete_and_acomplete_return_one_completion_per_request_in_order(fake_openai, endpoint):
    b = backend(fake_openai, endpoint=endpoint, batch_size=4)
    rs = reqs(5)
    out = b.complete(rs, GREEDY)
    assert [c.text.splitlines()[-1] for c in out] == [f"Answer: {30 + 2 * i}" for i in range(5)]
    assert all(c.finish_reason == "stop" and c.completion_tokens > 0 and c.prompt_tokens > 0 for c in out)
    assert {r.path for r in fake_openai.log} == {f"/v1/{'chat/completions' if endpoint == 'chat' else 'completions'}"}
    assert asyncio.run(b.acomplete(rs[:2], GREEDY)) == out[:2]
    short = b.complete(rs[:1], SamplingParams(temperature=0.0, max_new_tokens=3))[0]
    assert short.finish_reason == "length" and short.completion_tokens == 3


def test_complete_works_from_inside_an_event_loop(fake_openai):
    b = backend(fake_openai)

    async def main():
        return b.complete(reqs(2), GREEDY)

    assert len(asyncio.run(main())) == 2


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_logprobs_with_ids_feed_the_kd_store_and_without_ids_are_kept_as_strings(fake_openai, endpoint):
    sampling = SamplingParams(temperature=0.0, max_new_tokens=32, top_logprobs=4)
    with_ids = backend(fake_openai, endpoint=endpoint, token_ids=True).complete(reqs(1), sampling)[0]
    lp = with_ids.logprobs
    assert lp and len(lp) == with_ids.completion_tokens
    assert all(isinstance(e["id"], int) and len(e["top"]) == 4 and e["top"][0][0] == e["id"] for e in lp)
    tokens, top_ids, top_lp, tail = from_completion_logprobs(lp, k=4)
    assert tokens.shape == (len(lp),) and top_ids.shape == (len(lp), 4) and top_lp[0, 0] == pytest.approx(-0.1)

    strings = backend(fake_openai, endpoint=endpoint).complete(reqs(1), sampling)[0].logprobs
    assert strings[0]["id"] is None and strings[0]["token"] == "I" and strings[0]["top"] == []
    assert [t for t, _ in strings[1]["top_tokens"]][:2] == [" work", " work~1"]
    assert "".join(e["token"] for e in strings) == with_ids.text
    with pytest.raises(ValueError, match="no token id.*KD needs ids"):
        from_completion_logprobs(strings, k=4)


# ---- concurrency, retries, timeouts ----

def test_requests_in_flight_are_bounded_by_concurrency(fake_openai):
    fake_openai.latency_s = 0.15
    b = backend(fake_openai, concurrency=3, batch_size=2)
    assert b.max_concurrency == 3  # ceil(3 / 2) + 1 batches keep 3 slots busy
    started = time.monotonic()
    out, counts = draw(b, reqs(12), GREEDY)
    wall = time.monotonic() - started
    assert len(out) == 12 and counts.made == 12 and all(c.finish_reason == "stop" for c in out)
    assert fake_openai.max_in_flight == 3
    assert wall < 12 * 0.15 * 0.6  # 4 rounds of 3, not 12 one by one


def test_retry_after_is_honoured_and_backoff_grows(fake_openai):
    fake_openai.fault("429-retry-after", match="10 + 20", times=1)
    fake_openai.fault("429", match="11 + 21", times=1)
    out = backend(fake_openai, backoff_s=0.02).complete(reqs(2), GREEDY)
    assert [c.finish_reason for c in out] == ["stop", "stop"]
    waited = fake_openai.requests_for("10 + 20")
    assert len(waited) == 2 and waited[1].start - waited[0].end >= 0.95  # Retry-After: 1
    quick = fake_openai.requests_for("11 + 21")
    assert len(quick) == 2 and quick[1].start - quick[0].end < 0.5

    b = backend(fake_openai, backoff_s=1.0, max_backoff_s=5.0)
    for attempt, (lo, hi) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.5, 5.0), (2.5, 5.0)], start=1):
        waits = [b._wait(attempt, None) for _ in range(20)]
        assert all(lo <= w <= hi for w in waits) and len(set(waits)) > 1  # doubling, capped, jittered
    assert b._wait(1, 3.0) >= 3.0 and b._wait(1, 60.0) == 5.0  # at least Retry-After, at most the cap


def test_retry_after_header_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None and parse_retry_after({"retry-after": "soon"}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31


def test_failures_after_retries_become_error_completions(fake_openai):
    fake_openai.fault("503", match="10 + 20", times=None)
    fake_openai.fault("400-echo", match="11 + 21", times=None)
    fake_openai.hang_s = 1.0
    fake_openai.fault("hang", match="12 + 22", times=None)
    started = time.monotonic()
    out = backend(fake_openai, max_retries=2, timeout_s=0.2).complete(reqs(4), GREEDY)
    assert time.monotonic() - started < 3
    assert [c.finish_reason for c in out] == ["error", "error", "error", "stop"]
    assert out[0].meta["attempts"] == 3 and out[0].meta["error"].startswith("HTTP 503")
    assert out[1].meta["attempts"] == 1 and "HTTP 400" in out[1].meta["error"]  # a 400 is not retried
    assert out[2].meta["attempts"] == 3 and "timed out" in out[2].meta["error"]
    assert [len(fake_openai.requests_for(m)) for m in ("10 + 20", "11 + 21", "12 + 22", "13 + 23")] == [3, 1, 3, 1]


def test_an_unreachable_server_gives_error_completions_not_a_crash():
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff_s=0.01)
    out = b.complete(reqs(2), GREEDY)
    assert [c.finish_reason for c in out] == ["error", "error"] and "ConnectError" in out[0].meta["error"]


# ---- the API key ----

def test_the_api_key_is_sent_and_never_written(fake_openai, tmp_path, monkeypatch, caplog):
    key = "sk-test-5f0c1e9b7a2d4c31"
    monkeypatch.setenv("RD_TEST_KEY", key)
    fake_openai.api_key = key
    fake_openai.fault("400-echo", match="What is 3 + 1?", times=None)  # this server echoes the key back
    caplog.set_level(logging.DEBUG)
    probs = write_problems(tmp_path / "problems.jsonl", n=6)
    cache = tmp_path / "cache"
    tcfg = BackendConfig(backend="openai", model="fake-model", batch_size=2,
                         options={"base_url": fake_openai.url, "api_key_env": "RD_TEST_KEY", "max_retries": 1,
                                  "backoff_s": 0.01})
    gen = GenerateConfig(samples=2, rationalize=True, cache_dir=str(cache))
    from reasondistill.config import VerifyConfig

    m = run_generate(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen")
    assert {r.auth for r in fake_openai.log} == {f"Bearer {key}"}
    traces = [o for _, o in io.iter_jsonl(tmp_path / "gen" / "traces.jsonl")]
    errors = [t for t in traces if t["finish_reason"] == "error"]
    assert errors and all("Bearer ***" in t["meta"]["error"] for t in errors)
    assert m["outputs"]["n_errors"] == len(errors)
    assert m["config"]["teacher"]["options"]["api_key_env"] == "RD_TEST_KEY"
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in caplog.text and key not in json.dumps(m)

    # without the key the server refuses, and every row is an error trace, none lost
    monkeypatch.setenv("RD_TEST_KEY", "sk-wrong")
    m2 = run_generate(tcfg, gen, VerifyConfig(), probs, tmp_path / "gen2")
    rows = [o for _, o in io.iter_jsonl(tmp_path / "gen2" / "traces.jsonl")]
    assert len(rows) == len(traces) and m2["outputs"]["n_errors"] == len(rows) - m2["outputs"]["cached_teacher_calls"]
