"""A stand-in for the part of vLLM's public offline API the ``vllm`` backend uses (``LLM``,
``SamplingParams``, ``RequestOutput``-shaped answers), for CPU tests: vLLM does not install
here. Inject it with ``monkeypatch.setitem(sys.modules, "vllm", fake_vllm)``.

The "model" answers deterministically: greedy prompts get :data:`GREEDY`, sampled ones a text
naming their seed and sample index (so tests see how requests were grouped and seeded). Token
ids are the characters' codes; each step's logprobs hold ids ``0..k-1`` as the top k and the
chosen token (outside them, as vLLM adds it) at :data:`CHOSEN_LOGPROB`. A conversation
containing ``FAIL`` makes ``chat`` raise, as vLLM does for a prompt longer than the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GREEDY = "I add them. Answer: 5"
CHOSEN_LOGPROB = -4.0
VOCAB = 256


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:
    def __init__(self, n: int = 1, temperature: float = 1.0, top_p: float = 1.0, max_tokens: int | None = 16,
                 seed: int | None = None, stop: list[str] | None = None, logprobs: int | None = None,
                 prompt_logprobs: int | None = None) -> None:
        self.n, self.temperature, self.top_p, self.max_tokens = n, temperature, top_p, max_tokens
        self.seed, self.stop, self.logprobs, self.prompt_logprobs = seed, stop, logprobs, prompt_logprobs


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    prompt_logprobs: list[dict[int, Logprob] | None] | None = None


def step_logprobs(token: int, k: int) -> dict[int, Logprob]:
    out = {i: Logprob(-1.0 - 0.25 * i, rank=i + 1) for i in range(k)}
    out.setdefault(token, Logprob(CHOSEN_LOGPROB, rank=k + 7))
    return out


class Tokenizer:
    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = True) -> str:
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) % VOCAB for c in text]

    def __len__(self) -> int:
        return VOCAB


@dataclass
class _ModelConfig:
    def get_vocab_size(self) -> int:
        return VOCAB


@dataclass
class _Engine:
    model_config: _ModelConfig = field(default_factory=_ModelConfig)


class LLM:
    #: every engine built, newest last (tests read ``kwargs`` and ``calls``)
    instances: list[LLM] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.kwargs = {"model": model, **kwargs}
        self.calls: list[tuple[str, list[Any], list[SamplingParams]]] = []
        self.llm_engine = _Engine()
        LLM.instances.append(self)

    def get_tokenizer(self) -> Tokenizer:
        return Tokenizer()

    def chat(self, messages: list[list[dict[str, str]]], sampling_params: Any = None, use_tqdm: bool = True,
             **kwargs: Any) -> list[RequestOutput]:
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(messages)
        assert len(params) == len(messages), "one SamplingParams per conversation"
        self.calls.append(("chat", messages, params))
        if any("FAIL" in m["content"] for conv in messages for m in conv):
            raise ValueError("The decoder prompt (length 99999) is longer than the maximum model length\nmore")
        tok = Tokenizer()
        return [self._answer(tok.encode(tok.apply_chat_template(conv)), p) for conv, p in zip(messages, params)]

    def _answer(self, prompt_ids: list[int], p: SamplingParams) -> RequestOutput:
        outs = []
        for j in range(p.n):
            text = GREEDY if p.temperature == 0 else f"sample {j} seed {p.seed}. Answer: 5"
            finish = "stop"
            for s in p.stop or []:
                if s in text:
                    text = text[: text.index(s)]
            if p.max_tokens is not None and len(text) > p.max_tokens:
                text, finish = text[: p.max_tokens], "length"
            ids = [ord(c) for c in text]
            lps = [step_logprobs(t, p.logprobs) for t in ids] if p.logprobs else None
            outs.append(CompletionOutput(j, text, ids, lps, finish))
        return RequestOutput(prompt_ids, outs[::-1])  # out of order: the backend sorts by index

    def generate(self, prompts: list[dict[str, list[int]]], sampling_params: SamplingParams,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        self.calls.append(("generate", prompts, [sampling_params]))
        out = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            k = sampling_params.prompt_logprobs
            plp = [None] + [step_logprobs(t, k or 0) for t in ids[1:]] if k is not None else None
            out.append(RequestOutput(ids, [CompletionOutput(0, "x", [120], None, "length")], plp))
        return out
