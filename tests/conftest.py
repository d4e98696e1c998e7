"""Shared fixtures: offline tiny models built from the packaged SmolLM2 tokenizer."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A shell starts a background job (`.ci/run &`, nohup) with SIGINT ignored, and an ignored signal stays
# ignored across exec: the Ctrl-C tests' children would never see their SIGINT. A handled signal is
# reset to its default in the children instead, so they get Python's KeyboardInterrupt as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The packaged SmolLM2-135M-Instruct, dequantized once into the user cache."""
    from reasondistill import models
    return Path(models.resolve("smollm2-135m-instruct").path)


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with SmolLM2's real tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sample cache isolated per test (the model cache stays shared)."""
    d = tmp_path / "samples-cache"
    return d


@pytest.fixture(autouse=True)
def _one_thread_for_unit_tests(request: pytest.FixtureRequest):
    """Tiny models run ~10x faster on one thread than with two competing OpenMP threads;
    the end-to-end tests with the real 135M model keep every core."""
    if "/unit/" not in str(request.node.path):
        yield
        return
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def fake_openai():
    """A fault-injecting fake OpenAI-compatible server on 127.0.0.1 (``tests/fake_openai.py``),
    stopped after the test."""
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        yield server
