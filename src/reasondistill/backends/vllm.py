"""A teacher run in process by vLLM's offline engine (``vllm.LLM``), on GPUs.

Why in process rather than behind ``vllm serve`` (the ``openai`` backend): one engine call
takes a whole batch, samples of one problem share a prompt (``SamplingParams.n``, so the
prefix is computed once), and logprobs come back with token ids, which KD needs.

Requests in a batch with the same conversation are grouped into one prompt with ``n`` equal
to their count; each group is seeded from its conversation, sample indices and
``generate.seed``. Greedy requests are not grouped (every sample would be the same). A batch
the engine refuses is retried group by group, so one bad prompt becomes ``error`` rows
(retried by the next run) and the rest of the batch is kept. ``score`` returns a teacher's
top-k logprobs over a given completion (``prompt_logprobs``), for scoring traces it did not
write. Only vLLM's public API is used; it is imported when a recipe selects the backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import models
from ..errors import ConfigError
from .base import Backend, Completion, Request, SamplingParams, ScoreItem, ScoreResult

log = logging.getLogger(__name__)

INSTALL = "pip install 'reasondistill[vllm]' on a machine with a supported GPU"


@dataclass(frozen=True, slots=True)
class VLLMOptions:
    """``teacher.options`` of the ``vllm`` backend."""

    tensor_parallel_size: int = 1  # GPUs one model is split over
    gpu_memory_utilization: float = 0.9  # share of each GPU's memory the engine may take
    max_model_len: int | None = None  # context length; None: the model's own
    seed: int = 0  # the engine's seed (each request also gets its own, from generate.seed)
    engine_args: dict[str, Any] = field(default_factory=dict)  # more vllm.LLM keyword arguments; part of the identity

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ConfigError(f"teacher.options.tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("teacher.options.gpu_memory_utilization must be in (0, 1], "
                              f"got {self.gpu_memory_utilization}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ConfigError(f"teacher.options.max_model_len must be >= 1, got {self.max_model_len}")
        reserved = {"model", "dtype", "seed", "tensor_parallel_size", "trust_remote_code",
                    "gpu_memory_utilization", "max_model_len"} & set(self.engine_args)
        if reserved:
            raise ConfigError(f"teacher.options.engine_args: set {', '.join(sorted(reserved))} through "
                              "teacher.model / teacher.dtype / teacher.options instead")


def import_vllm() -> Any:
    """The ``vllm`` module, or a :class:`ConfigError` that says which extra to install."""
    try:
        import vllm
    except ImportError as e:
        raise ConfigError(f"teacher.backend vllm needs vLLM, which is not installed ({e}): {INSTALL}") from e
    return vllm


def logprob_of(value: Any) -> float:
    """vLLM's ``Logprob`` object (``.logprob``) or a bare float."""
    return float(getattr(value, "logprob", value))


def entry(token: int, step: Mapping[int, Any] | None, k: int) -> dict[str, Any]:
    """One token's ``{token_id: Logprob}`` map from vLLM in our format. vLLM adds the chosen
    token to the top k when it is not among them, so the map holds k or k + 1 entries."""
    if step is None:
        raise ValueError(f"no logprobs for token {token}")
    ranked = sorted(((int(i), logprob_of(v)) for i, v in step.items()), key=lambda iv: (-iv[1], iv[0]))
    chosen = step.get(token)
    if chosen is None:
        raise ValueError(f"the logprobs of token {token} do not include it")
    return {"id": int(token), "logprob": logprob_of(chosen), "top": [[i, round(lp, 5)] for i, lp in ranked[:k]]}


def group_seed(requests: Sequence[Request], sampling: SamplingParams) -> int:
    payload = json.dumps([list(requests[0].messages), [r.sample_idx for r in requests], sampling.seed],
                         sort_keys=True)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:4], "little") & 0x7FFFFFFF


def groups(requests: Sequence[Request], sampling: SamplingParams) -> list[list[int]]:
    """Indices of ``requests`` sharing a conversation, in first-seen order (one per request
    when greedy)."""
    if sampling.temperature <= 0:
        return [[i] for i in range(len(requests))]
    out: dict[str, list[int]] = {}
    for i, r in enumerate(requests):
        out.setdefault(json.dumps(list(r.messages), sort_keys=True), []).append(i)
    return list(out.values())


class VLLMBackend(Backend):
    Options = VLLMOptions

    can_score = True  # prompt_logprobs over the prompt + completion
    reads_model = local_weights = True
    requires = "vllm"

    def __init__(self, model: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 seed: int = 0, engine_args: dict[str, Any] | None = None, batch_size: int = 256) -> None:
        self.options = VLLMOptions(tensor_parallel_size=tensor_parallel_size,
                                   gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                                   seed=seed, engine_args=dict(engine_args or {}))
        self.vllm = import_vllm()
        ref = models.resolve(model)
        self.identity = _identity(ref.identity, self.options)
        self.name = f"vllm:{model.rstrip('/').rsplit('/', 1)[-1]}"
        self.batch_size = batch_size
        kwargs: dict[str, Any] = dict(model=ref.path, dtype=dtype, seed=seed, tensor_parallel_size=tensor_parallel_size,
                                      trust_remote_code=trust_remote_code, gpu_memory_utilization=gpu_memory_utilization)
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm = self.vllm.LLM(**kwargs, **self.options.engine_args)

    @classmethod
    def identity_of(cls, cfg: Any, options: VLLMOptions) -> str:
        return _identity(models.resolve(cfg.model).identity, options)

    @classmethod
    def from_config(cls, cfg: Any, options: VLLMOptions) -> VLLMBackend:
        return cls(cfg.model, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
                   tensor_parallel_size=options.tensor_parallel_size,
                   gpu_memory_utilization=options.gpu_memory_utilization, max_model_len=options.max_model_len,
                   seed=options.seed, engine_args=options.engine_args, batch_size=cfg.batch_size)

    @property
    def vocab_size(self) -> int | None:
        if self.llm is None:
            return None
        try:  # the model's (possibly padded) vocabulary: every id a logprob can name
            return int(self.llm.llm_engine.model_config.get_vocab_size())
        except AttributeError:
            return len(self.llm.get_tokenizer())

    def params(self, sampling: SamplingParams, n: int, seed: int) -> Any:
        """vLLM ``SamplingParams`` for one prompt drawn ``n`` times."""
        greedy = sampling.temperature <= 0
        return self.vllm.SamplingParams(n=n, temperature=0.0 if greedy else sampling.temperature,
                                        top_p=1.0 if greedy else sampling.top_p, max_tokens=sampling.max_new_tokens,
                                        seed=seed, stop=list(sampling.stop) or None,
                                        logprobs=sampling.top_logprobs if sampling.top_logprobs > 0 else None)

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        if self.llm is None:
            raise RuntimeError("vllm backend used after close()")
        if not requests:
            return []
        parts = groups(requests, sampling)
        results: list[Completion | None] = [None] * len(requests)
        try:
            self._run(requests, parts, sampling, results)
        except Exception as e:  # noqa: BLE001 - the engine refused the batch: find the groups at fault
            if len(parts) == 1:
                self._fail(requests, parts[0], e, results)
            else:
                log.warning("%s: batch of %d prompts failed (%s); retrying prompt by prompt", self.name,
                            len(parts), _first_line(e))
                for part in parts:
                    try:
                        self._run(requests, [part], sampling, results)
                    except Exception as e1:  # noqa: BLE001
                        self._fail(requests, part, e1, results)
        return [c for c in results if c is not None]

    def _run(self, requests: Sequence[Request], parts: list[list[int]], sampling: SamplingParams,
             results: list[Completion | None]) -> None:
        conversations = [[dict(m) for m in requests[p[0]].messages] for p in parts]
        params = [self.params(sampling, len(p), group_seed([requests[i] for i in p], sampling)) for p in parts]
        outputs = self.llm.chat(conversations, sampling_params=params, use_tqdm=False)
        if len(outputs) != len(parts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(parts)} prompts")
        for part, out in zip(parts, outputs):
            prompt_tokens = len(getattr(out, "prompt_token_ids", None) or [])
            samples = sorted(out.outputs, key=lambda o: getattr(o, "index", 0))
            for j, i in enumerate(part):
                results[i] = (self._completion(samples[j], prompt_tokens, sampling) if j < len(samples) else
                              _error(f"vLLM returned {len(samples)} samples for n={len(part)}", prompt_tokens))

    def _completion(self, sample: Any, prompt_tokens: int, sampling: SamplingParams) -> Completion:
        ids = list(sample.token_ids)
        reason = sample.finish_reason
        if reason not in ("stop", "length"):
            return _error(f"vLLM finished with {reason!r}", prompt_tokens, sample.text)
        logprobs = None
        if sampling.top_logprobs > 0:
            steps = sample.logprobs or []
            if len(steps) != len(ids):
                return _error(f"vLLM returned logprobs for {len(steps)} of {len(ids)} tokens", prompt_tokens,
                              sample.text)
            logprobs = [entry(t, s, sampling.top_logprobs) for t, s in zip(ids, steps)]
        return Completion(text=sample.text, finish_reason=reason, prompt_tokens=prompt_tokens,
                          completion_tokens=len(ids), logprobs=logprobs)

    def _fail(self, requests: Sequence[Request], part: list[int], e: Exception,
              results: list[Completion | None]) -> None:
        log.warning("%s: %s: %s (error traces; the next run retries them)", self.name,
                    requests[part[0]].problem.id, _first_line(e))
        for i in part:
            results[i] = _error(_first_line(e))

    def score(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        """The teacher's top-``top_k`` logprobs over each item's completion as the answer to its
        prompt, all items in one engine pass (``prompt_logprobs``): KD on traces another model
        wrote. Token ids given with an item are scored as they are (no re-tokenization)."""
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        tok = self.llm.get_tokenizer()
        spans = []
        for it in items:
            if it.prompt_ids is not None:
                prompt_ids = list(it.prompt_ids)
            else:
                prompt = it.prompt if isinstance(it.prompt, str) else tok.apply_chat_template(
                    [dict(m) for m in it.prompt], tokenize=False, add_generation_prompt=True)
                prompt_ids = list(tok.encode(prompt, add_special_tokens=False))
            completion_ids = (list(it.completion_ids) if it.completion_ids is not None
                              else list(tok.encode(it.completion, add_special_tokens=False)))
            spans.append((prompt_ids, completion_ids))
        todo = [k for k, (_, c) in enumerate(spans) if c]
        results = [ScoreResult([], []) for _ in spans]
        if not todo:
            return results
        params = self.vllm.SamplingParams(n=1, temperature=0.0, max_tokens=1, prompt_logprobs=top_k)
        outs = self.llm.generate([{"prompt_token_ids": spans[k][0] + spans[k][1]} for k in todo], params,
                                 use_tqdm=False)
        for k, out in zip(todo, outs):
            prompt_ids, completion_ids = spans[k]
            steps = out.prompt_logprobs[len(prompt_ids):]
            results[k] = ScoreResult(completion_ids, [entry(t, s, top_k) for t, s in zip(completion_ids, steps)])
        return results

    def close(self) -> None:
        self.llm = None  # vLLM frees the engine with its last reference


def _identity(model_identity: str, options: VLLMOptions) -> str:
    """``vllm:<model identity>`` (+ a hash of ``engine_args``, which may change samples, e.g.
    a quantization); GPUs, memory share and context length do not."""
    ident = f"vllm:{model_identity}"
    if options.engine_args:
        ident += "+" + hashlib.sha256(json.dumps(options.engine_args, sort_keys=True, default=str)
                                      .encode()).hexdigest()[:12]
    return ident


def _error(message: str, prompt_tokens: int = 0, text: str = "") -> Completion:
    return Completion(text=text, finish_reason="error", prompt_tokens=prompt_tokens, meta={"error": message})


def _first_line(e: Exception) -> str:
    line = next((s.strip() for s in str(e).splitlines() if s.strip()), "")
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


__all__ = ["VLLMBackend", "VLLMOptions", "entry", "groups", "import_vllm"]
