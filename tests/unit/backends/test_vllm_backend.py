"""The offline vLLM backend against a fake ``vllm`` module (``tests/fake_vllm.py``; vLLM does not
install on CPU): engine arguments, grouping of samples into ``n``, seeds, logprob conversion,
error rows, ``score`` and the identity."""

from __future__ import annotations

import sys

import pytest

from reasondistill.backends import backend_options, build_backend
from reasondistill.backends.base import Request, SamplingParams, ScoreItem
from reasondistill.config import BackendConfig
from reasondistill.errors import ConfigError
from reasondistill.logprobs import from_completion_logprobs
from reasondistill.records import Problem

from tests import fake_vllm

HOT = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=64, seed=7)


@pytest.fixture
def vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    fake_vllm.LLM.instances.clear()
    return fake_vllm


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A model folder as ``models.resolve`` sees one; the fake engine never reads it."""
    d = tmp_path / "tiny-model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "model.safetensors").write_bytes(b"weights")
    return d


def teacher(model, **options) -> BackendConfig:
    return BackendConfig(backend="vllm", model=str(model), dtype="bfloat16", batch_size=16, options=options)


def reqs(problem_ids, samples, hinted=False):
    out = []
    for pid in problem_ids:
        p = Problem(pid, "t", f"What is {pid}?", "5")
        out += [Request(p, ({"role": "user", "content": p.prompt},), i, hinted=hinted) for i in range(samples)]
    return out


def test_engine_arguments(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir, tensor_parallel_size=2, max_model_len=2048,
                                    engine_args={"enforce_eager": True}))
    kw = vllm.LLM.instances[-1].kwargs
    assert kw["model"] == str(tiny_model_dir) and kw["dtype"] == "bfloat16" and kw["tensor_parallel_size"] == 2
    assert kw["max_model_len"] == 2048 and kw["enforce_eager"] is True and kw["seed"] == 0
    assert kw["trust_remote_code"] is False
    assert backend.vocab_size == fake_vllm.VOCAB and backend.batch_size == 16 and backend.max_concurrency == 1


def test_samples_of_one_conversation_are_one_prompt_with_n(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir))
    batch = reqs(["a", "b"], 3)
    batch.insert(2, reqs(["c"], 1)[0])  # interleaved: grouping keeps each request's place
    out = backend.complete(batch, HOT)
    kind, convs, params = vllm.LLM.instances[-1].calls[-1]
    assert kind == "chat" and len(convs) == 3 and [p.n for p in params] == [3, 1, 3]
    assert convs[0] == [dict(batch[0].messages[0])] and convs[1][0]["content"] == "What is c?"
    assert all(p.temperature == 0.8 and p.top_p == 0.9 and p.max_tokens == 64 and p.logprobs is None for p in params)
    assert len({p.seed for p in params}) == 3  # one seed per group
    texts = [c.text for c in out]
    # sample j of a group is the engine's j-th output (outputs come back unordered)
    assert texts[0].startswith("sample 0 ") and texts[1].startswith("sample 1 ") and texts[3].startswith("sample 2 ")
    assert texts[2] == f"sample 0 seed {params[1].seed}. Answer: 5"
    assert all(c.finish_reason == "stop" and c.completion_tokens == len(c.text) and c.prompt_tokens > 0 for c in out)
    again = backend.complete(batch, HOT)  # reproducible: the same seeds
    assert [c.text for c in again] == texts
    seeds = [p.seed for p in vllm.LLM.instances[-1].calls[-1][2]]
    other = backend.complete(batch, SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=64, seed=8))
    assert [p.seed for p in vllm.LLM.instances[-1].calls[-1][2]] != seeds and [c.text for c in other] != texts


def test_greedy_requests_are_not_grouped(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir))
    out = backend.complete(reqs(["a"], 2), SamplingParams(temperature=0.0, max_new_tokens=64, stop=("Answer",)))
    _, convs, params = vllm.LLM.instances[-1].calls[-1]
    assert len(convs) == 2 and all(p.n == 1 and p.temperature == 0.0 and p.top_p == 1.0 for p in params)
    assert params[0].stop == ["Answer"]
    assert [c.text for c in out] == ["I add them. "] * 2


def test_length_finish_and_logprobs_in_our_format(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir))
    out = backend.complete(reqs(["a"], 2), SamplingParams(temperature=0.8, max_new_tokens=5, top_logprobs=3))
    assert vllm.LLM.instances[-1].calls[-1][2][0].logprobs == 3
    for c in out:
        assert c.finish_reason == "length" and c.completion_tokens == 5 and len(c.logprobs) == 5
        for ch, e in zip(c.text, c.logprobs):
            # the chosen token is outside the top 3: kept as the entry's id/logprob, not in "top"
            assert e["id"] == ord(ch) and e["logprob"] == fake_vllm.CHOSEN_LOGPROB
            assert e["top"] == [[0, -1.0], [1, -1.25], [2, -1.5]]
        ids, top_ids, _, _ = from_completion_logprobs(c.logprobs, k=3)
        assert ids.tolist() == [ord(ch) for ch in c.text] and top_ids[0].tolist() == [0, 1, 2]


def test_a_refused_prompt_becomes_error_rows_and_the_rest_is_kept(vllm, tiny_model_dir, caplog):
    backend = build_backend(teacher(tiny_model_dir))
    batch = reqs(["a"], 2) + reqs(["FAIL"], 2) + reqs(["b"], 1)
    out = backend.complete(batch, HOT)
    assert [c.finish_reason for c in out] == ["stop", "stop", "error", "error", "stop"]
    assert "longer than the maximum model length" in out[2].meta["error"] and "\n" not in out[2].meta["error"]
    calls = vllm.LLM.instances[-1].calls
    assert [len(c[1]) for c in calls] == [3, 1, 1, 1]  # the whole batch, then prompt by prompt
    assert "retrying prompt by prompt" in caplog.text


def test_score_returns_the_completion_tokens_top_k(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir))
    msgs = [{"role": "user", "content": "What is 2 + 3?"}]
    assert backend.can_score
    scored = backend.score([ScoreItem(tuple(msgs), "Answer: 5"), ScoreItem(tuple(msgs), "")], top_k=2)
    kind, prompts, params = vllm.LLM.instances[-1].calls[-1]
    prompt_len = len("<user>What is 2 + 3?<assistant>")
    assert kind == "generate" and params[0].prompt_logprobs == 2 and params[0].max_tokens == 1
    assert len(prompts[0]["prompt_token_ids"]) == prompt_len + len("Answer: 5")
    assert len(prompts) == 1  # the empty completion needs no engine call
    assert scored[0].token_ids == [e["id"] for e in scored[0].logprobs] == [ord(c) for c in "Answer: 5"]
    assert all(e["top"] == [[0, -1.0], [1, -1.25]] and e["logprob"] == fake_vllm.CHOSEN_LOGPROB
               for e in scored[0].logprobs)
    assert scored[1].token_ids == [] and scored[1].logprobs == []
    ids = backend.score([ScoreItem("p", "ignored", prompt_ids=(7, 8), completion_ids=(9, 10))], top_k=1)
    assert ids[0].token_ids == [9, 10]
    assert vllm.LLM.instances[-1].calls[-1][1][0]["prompt_token_ids"] == [7, 8, 9, 10]


def test_identity(vllm, tiny_model_dir):
    from reasondistill import models

    cfg = teacher(tiny_model_dir)
    backend = build_backend(cfg)
    assert backend.identity == type(backend).identity_of(cfg, backend_options(cfg))
    assert backend.identity == f"vllm:{models.resolve(str(tiny_model_dir)).identity}"
    assert build_backend(teacher(tiny_model_dir, tensor_parallel_size=4)).identity == backend.identity
    quant = build_backend(teacher(tiny_model_dir, engine_args={"quantization": "fp8"}))
    assert quant.identity.startswith(backend.identity + "+")


def test_options_are_checked_and_the_missing_extra_is_named(monkeypatch, tiny_model_dir):
    for bad, match in [({"tensor_parallel_size": 0}, "tensor_parallel_size"),
                       ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
                       ({"engine_args": {"dtype": "half"}}, "teacher.dtype")]:
        with pytest.raises(ConfigError, match=match):
            backend_options(teacher(tiny_model_dir, **bad))
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ConfigError, match=r"reasondistill\[vllm\]"):
        build_backend(teacher(tiny_model_dir))


def test_close_is_final(vllm, tiny_model_dir):
    backend = build_backend(teacher(tiny_model_dir))
    backend.close()
    backend.close()
    assert backend.vocab_size is None
    with pytest.raises(RuntimeError, match="after close"):
        backend.complete(reqs(["a"], 1), HOT)
