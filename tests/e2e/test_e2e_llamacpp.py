"""The real llama.cpp (``llama-cpp-python``) with the packaged SmolLM2-135M GGUF: in process
through the ``llamacpp`` backend (greedy text, logprobs, the generate stage end to end), and
``python -m llama_cpp.server`` on 127.0.0.1 driven by the ``openai`` backend, which answers
greedy prompts as the in-process backend does when both use the GGUF's chat template and
plain sampling. Slow (``-m slow``); skipped without the ``llamacpp`` extra (and, for the
server, llama-cpp-python's ``server`` extra)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest

from reasondistill import generate, io, models
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.config import Recipe, build
from reasondistill.records import Problem
from tests.helpers import stage_layout
from tests.loopback import LoopbackServer

LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not LLAMA_CPP, reason="llama_cpp is not installed: pip install "
                                                      "'reasondistill[llamacpp]' (llama-cpp-python==0.3.36)")]

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=24)


def problems(n: int = 3) -> list[Problem]:
    return [Problem(f"p{i}", "t", f"What is {3 + i} + {4 + 2 * i}?", str(7 + 3 * i)) for i in range(n)]


def requests(n: int = 3) -> list[Request]:
    return [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in problems(n)]


@pytest.fixture(scope="module")
def gguf():
    return models.packaged_gguf("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def local(gguf):
    from reasondistill.backends.llamacpp import LlamaCppBackend

    with LlamaCppBackend(str(gguf), n_ctx=1024) as backend:
        yield backend


def test_greedy_text_and_logprobs(local):
    out = local.complete(requests(2), SamplingParams(temperature=0.0, max_new_tokens=16, top_logprobs=5))
    vocab = local.vocab_size
    assert vocab == 49152
    for c in out:
        assert c.text.strip() and c.finish_reason in ("stop", "length") and c.prompt_tokens > 10
        assert 0 < c.completion_tokens <= 16 and len(c.logprobs) == c.completion_tokens
        for e in c.logprobs:
            ids = [i for i, _ in e["top"]]
            lps = [lp for _, lp in e["top"]]
            assert len(e["top"]) == 5 and len(set(ids)) == 5 and all(0 <= i < vocab for i in ids)
            assert lps == sorted(lps, reverse=True) and lps[0] <= 0 and sum(math.exp(v) for v in lps) <= 1 + 1e-4
            assert ids[0] == e["id"] and e["logprob"] == pytest.approx(lps[0], abs=1e-4)  # greedy: the argmax
    again = local.complete(requests(2)[:1], GREEDY)[0]
    assert again.text.startswith(out[0].text[:20])  # greedy is deterministic (16 of its 24 tokens)


def test_scores_as_the_transformers_teacher_does(local, gguf):
    """A GGUF as a token-level teacher: it accepts the SmolLM2 tokenizer (same ids), renders a
    conversation into the very ids the student's template gives, is deterministic, and its top-1
    tokens agree with the dequantized model scored by the transformers backend."""
    from reasondistill.backends.base import ScoreItem
    from reasondistill.backends.selftest import selftest
    from reasondistill.backends.transformers import TransformersBackend

    hf = TransformersBackend("smollm2-135m-instruct", dtype="float32", device="cpu")
    local.use_tokenizer(hf.tokenizer)
    items = [ScoreItem(({"role": "user", "content": p.prompt},), f"{p.prompt[8:-1]} = {p.answer}\nAnswer: {p.answer}")
             for p in problems(2)]
    ours, theirs = local.score(items, 5), hf.score(items, 5)
    assert [r.token_ids for r in ours] == [r.token_ids for r in theirs]  # the same rendering and ids
    pairs = [(a["top"][0][0], b["top"][0][0]) for r, q in zip(ours, theirs) for a, b in zip(r.logprobs, q.logprobs)]
    assert sum(a == b for a, b in pairs) >= 0.8 * len(pairs), pairs  # a quantized GGUF: top-1 mostly agrees
    ids = ScoreItem(items[0].prompt, "", prompt_ids=tuple(hf.encode_item(items[0])[0]),
                    completion_ids=tuple(ours[0].token_ids))
    assert local.score([ids], 5) == ours[:1]
    assert selftest(local, items, tolerance=1e-4).passed
    hf.close()


def test_gkd_with_the_gguf_as_live_teacher(gguf, tiny_model_dir, tmp_path, monkeypatch):
    """On-policy distillation of a SmolLM2-tokenizer student against the GGUF in process: the
    self-test passes and every trained token (cached and sampled) gets the teacher's target."""
    from reasondistill.config import TrainConfig
    from reasondistill.records import TrainExample
    from reasondistill.train import gkd
    from reasondistill.train.gkd_config import GKDObjectiveConfig

    monkeypatch.setenv("REASONDISTILL_CACHE", str(tmp_path / "cache"))
    rows = [TrainExample(prompt=[{"role": "user", "content": p.prompt}],
                         completion=[{"role": "assistant", "content": f"{p.prompt[8:-1]} = {p.answer}\nAnswer: "
                                                                      f"{p.answer}"}]) for p in problems(4)]
    io.write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = GKDObjectiveConfig(teacher={"backend": "llamacpp", "model": str(gguf), "options": {"n_ctx": 512}},
                             teacher_top_k=8, lmbda=0.5, max_new_tokens=8, loss="forward_kl")
    train = TrainConfig(student=str(tiny_model_dir), max_steps=2, batch_size=2, logging_steps=1, max_length=128,
                        warmup_ratio=0.0, dtype="float32", device="cpu")
    out = gkd.run(train, cfg, tmp_path / "train.jsonl", tmp_path / "out")["outputs"]
    assert out["teacher_selftest"]["passed"] and out["teacher"].startswith("llamacpp:")
    assert out["teacher_uncovered_tokens"] == 0 and out["on_policy_seqs"] > 0
    assert out["teacher_covered_tokens"] == out["on_policy_tokens"] + out["cached_tokens"] > 0


def test_seeded_sampling_and_stop_strings(local):
    hot = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=5)
    reqs = requests(1) + [Request(problems(1)[0], requests(1)[0].messages, 1)]
    a, b = local.complete(reqs, hot)
    assert local.complete(reqs[:1], hot)[0].text == a.text  # the same sample again, after another prompt ran
    assert a.text != b.text  # sample 1 is another draw
    full = local.complete(reqs[:1], GREEDY)[0].text
    word = full.split()[2]
    cut = local.complete(reqs[:1], SamplingParams(temperature=0.0, max_new_tokens=24, stop=(word,)))[0]
    assert cut.finish_reason == "stop" and cut.text == full[: full.index(word)]


def test_generate_stage_end_to_end(gguf, tmp_path):
    path = tmp_path / "problems.jsonl"
    io.write_jsonl(path, problems(3))
    rec = build(Recipe, {"teacher": {"backend": "llamacpp", "model": "smollm2-135m-instruct", "batch_size": 4,
                                     "options": {"n_ctx": 1024}},
                         "generate": {"samples": 2, "temperature": 0.7, "max_new_tokens": 32, "rationalize": False,
                                      "top_logprobs": 4, "cache_dir": str(tmp_path / "cache")}})
    m = generate.run(rec, stage_layout(tmp_path / "gen", "generate", train_problems=path))
    assert m["outputs"]["n_traces"] == 6 and m["outputs"]["n_errors"] == 0 and m["outputs"]["teacher_calls"] == 6
    assert m["outputs"]["teacher_identity"].startswith("llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf:")
    traces = [o for _, o in io.iter_jsonl(tmp_path / "gen" / "traces.jsonl")]
    assert all(t["raw"].strip() and t["usage"]["completion_tokens"] > 0 for t in traces)
    by_problem = {}
    for t in traces:
        by_problem.setdefault(t["problem_id"], []).append(t["raw"])
    assert any(len(set(texts)) > 1 for texts in by_problem.values())  # seeded per sample, not one draw copied
    index = json.loads((tmp_path / "gen" / "logprobs" / "index.json").read_text())
    assert index["k"] == 4 and index["id_dtype"] == "uint16" and len(index["traces"]) == 6
    again = generate.run(rec, stage_layout(tmp_path / "gen2", "generate", train_problems=path))
    assert again["outputs"]["teacher_calls"] == 0 and again["outputs"]["cached_teacher_calls"] == 6


class LlamaCppServer(LoopbackServer):
    """``python -m llama_cpp.server`` serving the GGUF on a free 127.0.0.1 port."""

    name = "llama_cpp.server"
    health_path = "/v1/models"

    def __init__(self, gguf, log_path, startup_s: float = 120.0) -> None:
        super().__init__(log_path, startup_s=startup_s)
        self.gguf = gguf

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
                "--port", str(self.port), "--n_ctx", "1024", "--chat_format", "chat_template.default"]


@pytest.mark.skipif(importlib.util.find_spec("sse_starlette") is None or importlib.util.find_spec("uvicorn") is None,
                    reason="llama_cpp.server needs llama-cpp-python's server extra: "
                           "pip install 'llama-cpp-python[server]==0.3.36'")
def test_llama_cpp_server_through_the_openai_backend(gguf, local, tmp_path):
    from reasondistill.backends.openai import OpenAIBackend

    here = local.complete(requests(3), GREEDY)
    with LlamaCppServer(gguf, tmp_path / "server.log") as server:
        # plain sampling, as the in-process backend does (the server's defaults add top-k, min-p, a repeat penalty)
        remote = OpenAIBackend("smollm2", base_url=server.base_url, timeout_s=120, concurrency=1,
                               extra_body={"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0})
        out = remote.complete(requests(3), GREEDY)
        assert all(c.finish_reason in ("stop", "length") and c.text.strip() for c in out), out
        assert all(c.prompt_tokens == h.prompt_tokens for c, h in zip(out, here))
        assert [c.text for c in out] == [c.text for c in here]
        lp = remote.complete(requests(1), SamplingParams(temperature=0.0, max_new_tokens=4, top_logprobs=3))[0]
        assert lp.logprobs and all(len(e["top_tokens"]) == 3 for e in lp.logprobs)  # token strings only, no ids
