"""The in-process llama.cpp backend against a fake ``llama_cpp`` (``tests/fake_llama_cpp.py``):
chat template, greedy and seeded sampling, stop strings, limits, logprobs in our format, the
GGUF identity, and the error without the extra. The real library runs in
``tests/e2e/test_e2e_llamacpp.py`` (slow)."""

from __future__ import annotations

import math
import shutil
import sys

import numpy as np
import pytest

from reasondistill import io
from reasondistill.backends import backend_options, build_backend
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.config import BackendConfig
from reasondistill.errors import ConfigError
from reasondistill.logprobs import from_completion_logprobs
from reasondistill.records import Problem

from tests import fake_llama_cpp as fake
from tests.helpers import recipe, stage_layout

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=64)
PROBLEM = Problem("p0", "t", "What is 2 + 3?", "5")


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "toy-model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    return path


@pytest.fixture
def llama(monkeypatch):
    return fake.install(monkeypatch)


def teacher(model, **options) -> BackendConfig:
    return BackendConfig(backend="llamacpp", model=str(model), batch_size=4, options=options)


def req(i=0, content=PROBLEM.prompt, problem=PROBLEM) -> Request:
    return Request(problem, ({"role": "user", "content": content},), i)


def test_greedy_renders_the_gguf_template_and_stops_at_eos(llama, gguf):
    backend = build_backend(teacher(gguf, n_ctx=512, n_threads=1))
    out = backend.complete([req()], GREEDY)[0]
    assert out.text == fake.SCRIPT.decode() and out.finish_reason == "stop"
    assert out.completion_tokens == len(fake.SCRIPT) and out.logprobs is None
    prompt = f"<user>{PROBLEM.prompt}\n<assistant>".encode()
    engine = fake.Llama.instances[-1]
    assert engine.prompts == [list(prompt)] and out.prompt_tokens == len(prompt)
    assert engine.kwargs["n_ctx"] == 512 and engine.kwargs["n_threads"] == 1 and engine.model_path == str(gguf)
    assert engine.last_sampling["temp"] == 0.0 and engine.last_sampling["repeat_penalty"] == 1.0
    assert backend.vocab_size == fake.VOCAB


def test_logprobs_are_the_raw_step_distribution_in_our_format(llama, gguf):
    backend = build_backend(teacher(gguf))
    out = backend.complete([req()], SamplingParams(temperature=0.9, max_new_tokens=6, top_logprobs=4, seed=3))[0]
    assert len(out.logprobs) == out.completion_tokens == 6
    for step, e in enumerate(out.logprobs):
        x = fake.logits_at(step).astype(np.float64)
        lp = x - np.log(np.exp(x - x.max()).sum()) - x.max()  # temperature does not enter: raw logits
        assert e["logprob"] == pytest.approx(lp[e["id"]], abs=1e-6)
        want = np.argsort(-lp)[:4]
        assert [i for i, _ in e["top"]] == want.tolist()
        assert [v for _, v in e["top"]] == pytest.approx(lp[want].tolist(), abs=1e-5)
    ids, top_ids, top_lp, tail = from_completion_logprobs(out.logprobs, k=4)  # what the KD store accepts
    assert ids.tolist() == [e["id"] for e in out.logprobs] and np.all(np.isfinite(tail))


def test_sampling_is_seeded_per_request(llama, gguf):
    backend = build_backend(teacher(gguf))
    hot = SamplingParams(temperature=8.0, top_p=1.0, max_new_tokens=12, seed=1)
    a = backend.complete([req(0), req(1), req(0)], hot)
    assert a[0].text == a[2].text and a[0].text != a[1].text  # same sample, same text; next sample differs
    again = backend.complete([req(1)], hot)[0]
    assert again.text == a[1].text  # independent of what else the batch held
    other = backend.complete([req(0)], SamplingParams(temperature=8.0, top_p=1.0, max_new_tokens=12, seed=2))[0]
    assert other.text != a[0].text  # generate.seed changes the draw
    assert fake.Llama.instances[-1].last_sampling["top_p"] == 1.0


def test_stop_strings_and_token_limits(llama, gguf):
    backend = build_backend(teacher(gguf, n_ctx=64))
    cut = backend.complete([req()], SamplingParams(temperature=0.0, max_new_tokens=64, stop=("Answer", ".")))[0]
    assert cut.text == "I add them" and cut.finish_reason == "stop"
    short = backend.complete([req()], SamplingParams(temperature=0.0, max_new_tokens=5))[0]
    assert short.text == "I add" and short.finish_reason == "length" and short.completion_tokens == 5
    # the context bounds the completion: 64 - prompt tokens
    long_prompt = "x" * 40  # 58 prompt tokens with the template
    tight = backend.complete([req(content=long_prompt)], GREEDY)[0]
    assert tight.finish_reason == "length" and tight.prompt_tokens + tight.completion_tokens == 64


def test_a_prompt_longer_than_the_context_is_an_error_row(llama, gguf, caplog):
    backend = build_backend(teacher(gguf, n_ctx=64))
    out = backend.complete([req(content="y" * 100), req()], GREEDY)
    assert out[0].finish_reason == "error" and "n_ctx=64" in out[0].meta["error"]
    assert out[1].finish_reason == "stop" and out[1].text == fake.SCRIPT.decode()


def test_chat_template_option_replaces_the_gguf_one(llama, gguf, tmp_path):
    tpl = tmp_path / "plain.jinja"
    tpl.write_text("{% for m in messages %}{{ m.content }}{% endfor %} =>")
    backend = build_backend(teacher(gguf, chat_template=str(tpl)))
    backend.complete([req()], GREEDY)
    assert fake.Llama.instances[-1].prompts[-1] == list(f"{PROBLEM.prompt} =>".encode())
    assert backend.identity != build_backend(teacher(gguf)).identity


def test_identity_is_the_file_content_not_its_place(llama, gguf, tmp_path):
    cfg = teacher(gguf)
    backend = build_backend(cfg)
    assert backend.identity == type(backend).identity_of(cfg, backend_options(cfg))
    assert backend.identity.startswith(f"llamacpp:{gguf.name}:{gguf.stat().st_size}:")
    moved = tmp_path / "elsewhere" / gguf.name
    moved.parent.mkdir()
    shutil.copy(gguf, moved)
    assert build_backend(teacher(moved)).identity == backend.identity
    data = bytearray(moved.read_bytes())
    data[100] ^= 1  # same name, same size, other content
    moved.write_bytes(bytes(data))
    assert build_backend(teacher(moved)).identity != backend.identity


def test_packaged_name_resolves_to_the_packaged_gguf(llama):
    from reasondistill import models

    backend = build_backend(teacher("smollm2-135m-instruct"))
    assert fake.Llama.instances[-1].model_path == str(models.packaged_gguf("smollm2-135m-instruct"))
    assert backend.name == "llamacpp:smollm2-135m-instruct"
    assert backend.identity.startswith("llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf:")


def test_bad_models_and_options_fail_before_loading(llama, gguf, tmp_path):
    with pytest.raises(ConfigError, match=r"\.gguf file or a packaged model"):
        build_backend(teacher(tmp_path))
    with pytest.raises(ConfigError, match="GGUF file not found"):
        build_backend(teacher(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="n_ctx"):
        backend_options(teacher(gguf, n_ctx=0))
    with pytest.raises(ConfigError, match="chat_template: no such file"):
        backend_options(teacher(gguf, chat_template=str(tmp_path / "none.jinja")))
    with pytest.raises(ConfigError, match="unknown|n_batch"):
        backend_options(teacher(gguf, n_batch=8))
    assert fake.Llama.instances == []


def test_without_the_extra_the_error_names_it(monkeypatch, gguf):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    cfg = teacher(gguf)
    from reasondistill.backends.llamacpp import LlamaCppBackend

    assert LlamaCppBackend.identity_of(cfg, backend_options(cfg)).startswith("llamacpp:")  # no library needed
    with pytest.raises(ConfigError, match=r"reasondistill\[llamacpp\]"):
        build_backend(cfg)


def test_generate_stage_writes_traces_and_the_logprob_store(llama, gguf, tmp_path):
    from reasondistill import generate
    from reasondistill.config import GenerateConfig
    from reasondistill.logprobs import LogprobReader

    problems = tmp_path / "problems.jsonl"
    io.write_jsonl(problems, [Problem(f"p{i}", "t", f"What is {i} + 5 - {i}?", "5") for i in range(3)])
    gen = GenerateConfig(samples=2, temperature=0.7, max_new_tokens=32, top_logprobs=3, rationalize=False,
                         cache_dir=str(tmp_path / "cache"))
    m = generate.run(recipe(teacher=teacher(gguf), generate=gen), stage_layout(tmp_path / "gen", "generate",
                                                                            train_problems=problems))
    assert m["outputs"]["n_traces"] == 6 and m["outputs"]["n_errors"] == 0
    assert m["outputs"]["teacher_identity"].startswith("llamacpp:toy-model.gguf:")
    traces = [o for _, o in io.iter_jsonl(tmp_path / "gen" / "traces.jsonl")]
    assert all(t["teacher"] == "llamacpp:toy-model" and t["usage"]["completion_tokens"] > 0 for t in traces)
    reader = LogprobReader(tmp_path / "gen" / "logprobs")
    assert reader.k == 3 and len(reader) == 6
    assert math.isfinite(float(reader.get(traces[0]["id"])[2][0, 0]))


def test_close_is_idempotent_and_final(llama, gguf):
    backend = build_backend(teacher(gguf))
    backend.close()
    backend.close()
    assert fake.Llama.instances[-1].closed and backend.vocab_size is None
    with pytest.raises(RuntimeError, match="after close"):
        backend.complete([req()], GREEDY)


# --- scoring: a GGUF as a token-level teacher (KD, GKD, KDRL)


def test_score_is_teacher_forcing_on_the_raw_logits(llama, gguf):
    from reasondistill.backends.base import ScoreItem
    from reasondistill.backends.selftest import selftest

    backend = build_backend(teacher(gguf, n_ctx=512))
    item = ScoreItem(({"role": "user", "content": "2 + 3?"},), "Answer: 5")
    [result] = backend.score([item], 3)
    prompt = list(b"<user>2 + 3?\n<assistant>")
    full = list(b"<user>2 + 3?\n<assistant>Answer: 5\n")  # the completion as the assistant turn, its end included
    assert result.token_ids == full[len(prompt):]
    for i, (tok, entry) in enumerate(zip(result.token_ids, result.logprobs)):
        x = fake.context_logits(prompt + result.token_ids[:i]).astype(np.float64)
        lp = x - x.max() - math.log(np.exp(x - x.max()).sum())
        assert entry["id"] == tok and entry["logprob"] == pytest.approx(lp[tok])
        assert [a for a, _ in entry["top"]] == list(np.argsort(-lp, kind="stable")[:3])
    # the student's own ids are scored as they are, and the same text scores the same every time
    ids = ScoreItem(item.prompt, "", prompt_ids=tuple(prompt), completion_ids=tuple(result.token_ids))
    assert backend.score([ids], 3) == [result]
    assert selftest(backend, [item, ids], tolerance=0.0).passed


def test_score_refuses_what_it_cannot_score(llama, gguf):
    from reasondistill.backends.base import ScoreItem

    backend = build_backend(teacher(gguf, n_ctx=16))
    with pytest.raises(ConfigError, match="within n_ctx=16"):
        backend.score([ScoreItem("a question that is long", "and its long answer")], 2)
    with pytest.raises(ConfigError, match="token id 500 is outside the GGUF's 128 ids"):
        backend.score([ScoreItem("q", "", prompt_ids=(1, 2), completion_ids=(500,))], 2)
    from reasondistill import models

    tok = models.load_tokenizer(str(models.resolve("smollm2-135m-instruct").path))
    with pytest.raises(ConfigError, match="splits text into other token ids than the student's tokenizer"):
        backend.use_tokenizer(tok)  # the byte-level toy is no GGUF of SmolLM2
