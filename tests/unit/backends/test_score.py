"""Teacher scoring (``Backend.score``): transformers in-process, openai via echo + logprobs on the
fake server, the base refusal, the score cache and the determinism self-test."""

import math

import pytest
import torch

from reasondistill import models
from reasondistill.backends.base import ScoreItem
from reasondistill.backends.dummy import DummyBackend
from reasondistill.backends.openai import OpenAIBackend
from reasondistill.backends.score_cache import cached_score
from reasondistill.backends.selftest import TeacherNotDeterministic, selftest
from reasondistill.backends.transformers import TransformersBackend
from reasondistill.errors import ConfigError
from reasondistill.scoring import encode
from tests.fake_openai import FakeOpenAI

ITEMS = [ScoreItem(({"role": "user", "content": "What is 2 + 3?"},), "2 + 3 = 5\nAnswer: 5"),
         ScoreItem(({"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 10 - 4?"}),
                   "Six.\nAnswer: 6"),
         ScoreItem("Plain prompt: 7 * 6 =", " 42")]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return models.load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return TransformersBackend(str(tiny_model_dir), dtype="float32", device="cpu", batch_size=2)


def test_transformers_score_equals_a_direct_forward(hf, tok):
    results = hf.score(ITEMS, 5)
    model = hf.model
    for item, res in zip(ITEMS, results):
        if isinstance(item.prompt, str):
            p_ids = tok(item.prompt, add_special_tokens=False)["input_ids"]
            full = tok(item.prompt + item.completion, add_special_tokens=False)["input_ids"]
        else:
            p_ids, full = encode(tok, list(item.prompt), [{"role": "assistant", "content": item.completion}])
        assert res.token_ids == full[len(p_ids):]  # end-of-turn included for conversations
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
        for j, entry in enumerate(res.logprobs):
            row = logp[len(p_ids) - 1 + j]
            vals, ids = row.topk(5)
            assert entry["id"] == full[len(p_ids) + j]
            assert entry["logprob"] == pytest.approx(float(row[entry["id"]]), abs=1e-4)
            assert [i for i, _ in entry["top"]] == ids.tolist()
            assert [v for _, v in entry["top"]] == pytest.approx(vals.tolist(), abs=1e-4)


def test_backends_without_scoring_refuse_by_name():
    assert not DummyBackend.can_score and TransformersBackend.can_score and OpenAIBackend.can_score
    with pytest.raises(ConfigError, match="'dummy' .*cannot score"):
        DummyBackend().score(ITEMS, 3)


def openai(server, tok=None, **kw):
    backend = OpenAIBackend("fake-model", base_url=server.url, backoff_s=0.01, max_retries=1, **kw)
    if tok is not None:
        backend.use_tokenizer(tok)
    return backend


@pytest.mark.parametrize("token_ids", [False, True])
def test_openai_score_echo_maps_tokens_to_the_students_ids(tok, token_ids):
    with FakeOpenAI(tokenizer=tok) as server:
        backend = openai(server, tok, token_ids=token_ids)
        results = backend.score(ITEMS, 4)
        body = server.log[0].body
    assert body["echo"] is True and body["logprobs"] == 4 and body["max_tokens"] == 1
    assert server.log[0].path.endswith("/v1/completions")
    for item, res in zip(ITEMS, results):
        if isinstance(item.prompt, str):
            full = tok(item.prompt + item.completion, add_special_tokens=False)["input_ids"]
            p_ids = tok(item.prompt, add_special_tokens=False)["input_ids"]
        else:  # rendered with the student's chat template: the ids training uses
            p_ids, full = encode(tok, list(item.prompt), [{"role": "assistant", "content": item.completion}])
        assert res.token_ids == full[len(p_ids):]
        assert [e["id"] for e in res.logprobs] == res.token_ids
        for e in res.logprobs:
            assert len(e["top"]) == 4 and e["id"] in [i for i, _ in e["top"]]
            assert sum(math.exp(v) for _, v in e["top"]) < 1
            assert [v for _, v in e["top"]] == sorted((v for _, v in e["top"]), reverse=True)


def test_openai_score_refuses_token_strings_it_cannot_map(tok):
    with FakeOpenAI() as server:  # word tokens: " 42" is no token of SmolLM2 (one digit per token)
        with pytest.raises(ConfigError, match="no tokenizer maps strings to ids"):
            openai(server).score(ITEMS[2:], 2)
        with pytest.raises(ConfigError, match="is no token of the student's tokenizer"):
            openai(server, tok).score(ITEMS[2:], 2)


def test_openai_score_retries_then_fails_loudly(tok):
    from reasondistill.backends.openai import ScoreFailed

    with FakeOpenAI(tokenizer=tok) as server:
        server.fault("503", times=1)
        assert openai(server, tok).score(ITEMS[2:], 2)[0].token_ids  # retried
        server.fault("500", times=None)
        with pytest.raises(ScoreFailed, match=r"after 2 attempt\(s\): HTTP 500"):
            openai(server, tok).score(ITEMS[2:], 2)


def test_score_cache_scores_each_text_once(tok, tmp_path):
    with FakeOpenAI(tokenizer=tok) as server:
        backend = openai(server, tok)
        first, n1 = cached_score(backend, ITEMS, 3, tmp_path)
        again, n2 = cached_score(backend, ITEMS, 3, tmp_path)
        other_k, n3 = cached_score(backend, ITEMS[:1], 2, tmp_path)
    assert (n1, n2, n3) == (3, 0, 1) and len(server.log) == 4
    assert again == first


def test_selftest_passes_a_deterministic_teacher(tok, hf):
    with FakeOpenAI(tokenizer=tok) as server:
        result = selftest(openai(server, tok), ITEMS, tolerance=1e-6)
    assert result.passed and result.max_diff == 0.0 and result.n_items == 3 and result.n_tokens > 10
    assert len(server.log) == 3 + 3 + 3  # together, reversed, alone
    local = selftest(hf, ITEMS, tolerance=1e-3)  # padding differs between batch and alone
    assert local.passed and local.max_diff < 1e-3


def test_selftest_refuses_a_noisy_teacher_naming_the_difference(tok):
    with FakeOpenAI(tokenizer=tok, score_noise=0.05) as server:
        with pytest.raises(TeacherNotDeterministic, match=r"differing by up to 0\.\d+ \(> score_tolerance 0\.01\)"):
            selftest(openai(server, tok), ITEMS, tolerance=0.01)
        assert selftest(openai(server, tok), ITEMS, tolerance=5.0).max_diff > 0.01


def test_items_with_token_ids_are_scored_as_those_ids(tok, hf):
    """A student's sample whose decoded text would re-tokenize differently: byte tokens of one
    character split across two ids. Given as ids, both backends score exactly those tokens."""
    p_ids, _ = encode(tok, list(ITEMS[0].prompt), [{"role": "assistant", "content": "x"}])
    comp = tok.convert_tokens_to_ids(["Ã", "©", "2"])  # "é" as two byte tokens, as a sampler may emit it
    item = ScoreItem(ITEMS[0].prompt, tok.decode(comp), prompt_ids=tuple(p_ids), completion_ids=tuple(comp))
    assert tok(tok.decode(comp), add_special_tokens=False)["input_ids"] != comp  # the text path would misalign
    assert hf.score([item], 3)[0].token_ids == comp
    with FakeOpenAI(tokenizer=tok) as server:
        res = openai(server, tok, score_ids=True, token_ids=True).score([item], 3)[0]
        assert server.log[0].body["prompt"] == list(p_ids) + comp
    assert res.token_ids == comp and [e["id"] for e in res.logprobs] == comp


def test_a_server_that_ignores_echo_and_logprobs_is_refused_without_retries(tok):
    with FakeOpenAI(tokenizer=tok, ignore_logprobs=True) as server:
        with pytest.raises(ConfigError, match="without logprobs, so it does not support echo"):
            OpenAIBackend("fake-model", base_url=server.url, max_retries=3, backoff_s=5.0).score(ITEMS[:1], 2)
        assert len(server.log) == 1
