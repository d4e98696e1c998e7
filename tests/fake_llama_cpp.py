"""A stand-in for the part of ``llama_cpp`` the ``llamacpp`` backend uses, for tests that run
without the compiled package. Inject it with :func:`install`.

The "model" is a byte-level toy: token ``b`` is the byte ``b``, token 0 is end of sequence,
and each step's logits favour the next byte of :data:`SCRIPT` (then EOS) by :data:`MARGIN`
nats, with small deterministic noise elsewhere, so greedy decoding writes the script and hot
sampling wanders in a way only the seed decides.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

SCRIPT = b"I add them. Answer: 5"
VOCAB = 128
EOS = 0
MARGIN = 6.0
TEMPLATE = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def logits_at(step: int, n_vocab: int = VOCAB) -> np.ndarray:
    """The toy model's logits for the ``step``-th generated token."""
    x = np.sin(np.arange(n_vocab) * (step + 1) * 0.7).astype(np.float32) * 0.5
    x[SCRIPT[step] if step < len(SCRIPT) else EOS] += MARGIN
    return x


def context_logits(history: list[int], n_vocab: int = VOCAB) -> np.ndarray:
    """The logits after ``history`` was evaluated (scoring, ``Llama.eval``): a function of its
    length and last token only, so the same text always scores the same."""
    x = logits_at(len(history) % (len(SCRIPT) + 1), n_vocab)
    x[history[-1] % n_vocab] += 1.0
    return x


class _Ctx:
    last_logits: np.ndarray | None = None


class Llama:
    instances: list[Llama] = []
    #: set by :func:`mirror`: tokenize with a real Hugging Face tokenizer, over its vocabulary
    tokenizer: Any = None

    def __init__(self, model_path: str, **kwargs: Any) -> None:
        self.model_path, self.kwargs = model_path, kwargs
        self.metadata = {"tokenizer.chat_template": TEMPLATE}
        self.ctx, self.model = _Ctx(), object()
        self.seed: int | None = None
        self.prompts: list[list[int]] = []
        self.closed = False
        self.history: list[int] = []  # tokens evaluated since the last reset (scoring)
        Llama.instances.append(self)

    def token_eos(self) -> int:
        return EOS

    def token_bos(self) -> int:
        return -1

    def n_vocab(self) -> int:
        return len(self.tokenizer) if self.tokenizer is not None else VOCAB

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        assert not add_bos, "the chat template writes any BOS itself"
        if self.tokenizer is not None:
            return self.tokenizer(text.decode("utf-8"), add_special_tokens=False)["input_ids"]
        return [b % VOCAB for b in text]

    def reset(self) -> None:
        self.history = []

    def eval(self, tokens: list[int]) -> None:
        assert tokens and all(0 <= t < self.n_vocab() for t in tokens)
        self.history += list(tokens)
        self.ctx.last_logits = context_logits(self.history, self.n_vocab())

    def detokenize(self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False) -> bytes:
        if self.tokenizer is not None:
            return self.tokenizer.decode(tokens, skip_special_tokens=not special).encode("utf-8")
        return bytes(t for t in tokens if t != EOS or special)

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def generate(self, tokens: list[int], temp: float = 0.8, top_p: float = 0.95, **kwargs: Any):
        self.prompts.append(list(tokens))
        self.last_sampling = {"temp": temp, "top_p": top_p, **kwargs}
        rng = np.random.default_rng(self.seed)
        step = 0
        while True:
            x = logits_at(step, self.n_vocab())
            self.ctx.last_logits = x
            if temp <= 0:
                tok = int(np.argmax(x))
            else:
                p = np.exp((x - x.max()) / temp)
                tok = int(rng.choice(VOCAB, p=p / p.sum()))
            yield tok
            step += 1

    def close(self) -> None:
        self.closed = True


def llama_model_get_vocab(model: Any) -> str:
    return "vocab"


def llama_vocab_is_eog(vocab: Any, token: int) -> bool:
    return token == EOS


def llama_get_logits_ith(ctx: _Ctx, i: int) -> np.ndarray:
    assert i == -1
    return ctx.last_logits


class Jinja2ChatFormatter:
    def __init__(self, template: str, eos_token: str, bos_token: str, add_generation_prompt: bool = True,
                 stop_token_ids: list[int] | None = None) -> None:
        import jinja2

        self.template = jinja2.Environment().from_string(template)
        self.add_generation_prompt = add_generation_prompt

    def __call__(self, *, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        return types.SimpleNamespace(prompt=self.template.render(messages=messages,
                                                                 add_generation_prompt=self.add_generation_prompt))


def install(monkeypatch: Any) -> types.ModuleType:
    """Put this fake in ``sys.modules`` as ``llama_cpp`` (and its ``llama_chat_format``)."""
    module = sys.modules[__name__]
    chat = types.ModuleType("llama_cpp.llama_chat_format")
    chat.Jinja2ChatFormatter = Jinja2ChatFormatter
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_chat_format", chat)
    Llama.instances.clear()
    monkeypatch.setattr(Llama, "tokenizer", None)
    return module


def mirror(monkeypatch: Any, tokenizer: Any) -> None:
    """Make the installed fake tokenize as ``tokenizer`` does, over its vocabulary: a GGUF of the
    student's own model family, for a llama.cpp teacher of a Hugging Face student."""
    monkeypatch.setattr(Llama, "tokenizer", tokenizer)
