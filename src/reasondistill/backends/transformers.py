"""Backend backend on Hugging Face transformers: batched ``generate`` with chat templates.

Runs anywhere torch runs (CPU here, bf16 on GPU). Prompts are left-padded and
batched; stop strings are applied both inside ``generate`` and on the decoded text, and so is
``SamplingParams.stop_at_answer`` (a per-row stop after the answer line, :mod:`.answer_stop`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from .. import models
from ..grading.answers import answer_line_end
from .base import Backend, Completion, Request, SamplingParams, ScoreItem, ScoreResult

log = logging.getLogger(__name__)


class TransformersBackend(Backend):
    can_score = True
    reads_model = local_weights = True
    #: ``generate``'s ``cache_implementation`` ("static": a preallocated KV cache); None: the dynamic default,
    #: not slower on CPU without torch.compile (benchmarks/eval_greedy.py --static-cache measures it). Not in
    #: the identity: in bf16 a static cache can flip greedy near-ties, so keep it off where samples are cached
    cache_implementation: str | None = None

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto", batch_size: int = 32,
                 trust_remote_code: bool = False, name: str | None = None,
                 cache_implementation: str | None = None) -> None:
        ref = models.resolve(model)
        self.cache_implementation = cache_implementation
        self.name = name or f"hf:{model}"
        self.identity = f"transformers:{ref.identity}"
        self.batch_size = batch_size
        self.tokenizer = models.load_tokenizer(ref.path, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        self.model = models.load_model(ref.path, dtype=dtype, device=device,
                                       trust_remote_code=trust_remote_code)

    @classmethod
    def identity_of(cls, cfg, options) -> str:
        return f"transformers:{models.resolve(cfg.model).identity}"

    @classmethod
    def from_config(cls, cfg, options) -> TransformersBackend:
        return cls(cfg.model, dtype=cfg.dtype, device=cfg.device, batch_size=cfg.batch_size,
                   trust_remote_code=cfg.trust_remote_code)

    @property
    def vocab_size(self) -> int | None:
        return len(self.tokenizer)

    @classmethod
    def from_model(cls, model, tokenizer, *, name: str, batch_size: int = 32) -> TransformersBackend:
        """Wrap an already loaded model (evaluation of a freshly trained student)."""
        self = cls.__new__(cls)
        self.name, self.batch_size = name, batch_size
        self.identity = f"transformers:{name}"
        self.model, self.tokenizer = model.eval(), tokenizer
        self.tokenizer.padding_side = "left"
        return self

    @property
    def context_length(self) -> int | None:
        """The positions the model was built for (``max_position_embeddings``), if it says."""
        n = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        return n if isinstance(n, int) and n > 0 else None

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def prompt_length(self, request: Request) -> int:
        return len(self.tokenizer(self.render(request.messages), add_special_tokens=False)["input_ids"])

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        import torch

        if not requests:
            return []
        tok = self.tokenizer
        texts = [self.render(r.messages) for r in requests]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        greedy = sampling.temperature <= 0
        # one seed per batch, derived from its content: the same batch resamples identically
        digest = hashlib.sha256(("\x00".join(texts) + str(sampling.seed)).encode()).digest()
        torch.manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFFFFFF)
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=not greedy,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tok)
        if sampling.top_logprobs > 0:
            kwargs.update(return_dict_in_generate=True, output_logits=True)
        if sampling.stop_at_answer:
            from transformers import StoppingCriteriaList

            from .answer_stop import AnswerLineStop
            kwargs.update(stopping_criteria=StoppingCriteriaList([AnswerLineStop(tok, enc["input_ids"].shape[1])]))
        if self.cache_implementation:
            kwargs.update(cache_implementation=self.cache_implementation)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        sequences = out.sequences if sampling.top_logprobs > 0 else out
        prompt_len = enc["input_ids"].shape[1]
        new = sequences[:, prompt_len:]
        prompt_counts = enc["attention_mask"].sum(dim=1).tolist()
        overflow = self._over_context(requests, prompt_counts)
        results = []
        for i, row in enumerate(new.tolist()):
            ids, finish = self._trim(row)
            text = tok.decode(ids, skip_special_tokens=True)
            for s in sampling.stop:
                if s in text:
                    text, finish = text[: text.index(s)], "stop"
            if sampling.stop_at_answer and (end := answer_line_end(text)) is not None:
                text, finish = text[:end], "stop"
            logprobs = None
            if sampling.top_logprobs > 0:
                logprobs = self._top_logprobs(out.logits, i, ids, sampling.top_logprobs)
            results.append(Completion(text=text, finish_reason=finish, prompt_tokens=int(prompt_counts[i]),
                                      completion_tokens=len(ids), logprobs=logprobs,
                                      meta={"context_overflow": overflow[i]} if i in overflow else {}))
        return results

    def _over_context(self, requests: Sequence[Request], prompt_counts: list[int]) -> dict[int, dict[str, int]]:
        """Requests whose prompt alone fills the model's context: what is generated after it is
        past every position the model was trained on. Warned (problem ids and lengths) and marked
        in the completion's meta, so the stage summaries count them."""
        ctx = self.context_length
        if ctx is None:
            return {}
        over = {i: {"prompt_tokens": int(n), "context": ctx} for i, n in enumerate(prompt_counts) if n >= ctx}
        if over:
            shown = ", ".join(f"{requests[i].problem.id} ({v['prompt_tokens']} tokens)" for i, v in list(over.items())[:5])
            log.warning("%s: %d prompt(s) longer than the model's context of %d tokens: %s%s", self.name, len(over),
                        ctx, shown, " ..." if len(over) > 5 else "")
        return over

    def encode_item(self, item: ScoreItem) -> tuple[list[int], list[int]]:
        """``(prompt_ids, full_ids)``: a conversation as training encodes it (chat template, the
        completion as the assistant turn, its end-of-turn included), a string as plain text."""
        from ..scoring import encode

        tok = self.tokenizer
        if item.prompt_ids is not None and item.completion_ids is not None:
            return list(item.prompt_ids), list(item.prompt_ids) + list(item.completion_ids)
        if isinstance(item.prompt, str):
            prompt_ids = tok(item.prompt, add_special_tokens=False)["input_ids"]
            full_ids = tok(item.prompt + item.completion, add_special_tokens=False)["input_ids"]
            if full_ids[:len(prompt_ids)] != prompt_ids:
                raise ValueError("the prompt's tokens are not a prefix of prompt + completion")
            return prompt_ids, full_ids
        return encode(tok, list(item.prompt), [{"role": "assistant", "content": item.completion}])

    def score(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        """One forward pass per ``batch_size`` items (right-padded), logits only at completion positions."""
        import torch

        from ..scoring import completion_logits

        encoded = [self.encode_item(it) for it in items]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        results: list[ScoreResult] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start:start + self.batch_size]
            width = max(len(full) for _, full in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            positions = torch.zeros_like(ids, dtype=torch.bool)  # positions whose NEXT token is a completion token
            for b, (prompt, full) in enumerate(chunk):
                ids[b, :len(full)] = torch.tensor(full, dtype=torch.long)
                mask[b, :len(full)] = 1
                positions[b, max(len(prompt), 1) - 1:len(full) - 1] = True
            with torch.inference_mode():
                logits = completion_logits(self.model, ids.to(device), mask.to(device), positions.to(device))
                logp = torch.log_softmax(logits.float(), dim=-1)
                vals, top = logp.topk(top_k, dim=-1)
            at = 0
            for prompt, full in chunk:
                completion = full[max(len(prompt), 1):]
                rows = range(at, at + len(completion))
                at += len(completion)
                results.append(ScoreResult(list(completion), [
                    {"id": tid, "logprob": float(logp[r, tid]),
                     "top": [[int(a), float(v)] for a, v in zip(top[r].tolist(), vals[r].tolist())]}
                    for r, tid in zip(rows, completion)]))
        return results

    def _trim(self, row: list[int]) -> tuple[list[int], str]:
        eos = self.tokenizer.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        pad = self.tokenizer.pad_token_id
        for j, t in enumerate(row):
            if t in eos_ids:
                return row[:j], "stop"
        while row and row[-1] == pad and pad not in eos_ids:
            row = row[:-1]
        return row, "length"

    @staticmethod
    def _top_logprobs(logits, i: int, ids: list[int], k: int) -> list[dict]:
        import torch
        out = []
        for step, tid in enumerate(ids):
            lp = torch.log_softmax(logits[step][i].float(), dim=-1)
            vals, idx = lp.topk(k)
            out.append({"id": tid, "logprob": float(lp[tid]),
                        "top": [[int(a), round(float(b), 5)] for a, b in zip(idx.tolist(), vals.tolist())]})
        return out

    def close(self) -> None:
        self.model = None
