"""A teacher run in process by llama.cpp (``llama-cpp-python``) from a GGUF file.

Why: a quantized GGUF decodes several times faster than the dequantized transformers model
on CPU, with no conversion step. ``teacher.model`` is a ``.gguf`` file or a packaged name
(``smollm2-135m-instruct``). Prompts are rendered with the GGUF's own chat template (its
``tokenizer.chat_template`` metadata) or a Jinja file given in ``teacher.options.chat_template``.

Decoding is a token loop over ``Llama.generate`` so token ids are known: per-token top-k
logprobs come from the raw logits of the step (before temperature and top-p, as in the
transformers backend), in the ``{"id", "logprob", "top": [[id, logprob], ...]}`` format.
Each request is seeded from its conversation, sample index and ``generate.seed``.
Requires the ``llamacpp`` extra; the backend is only imported when a recipe selects it.

Scoring (``score``, a token-level teacher for KD, GKD and KDRL) is teacher forcing: the prompt is
evaluated in one pass, then each completion token after the step's raw logits are read, in the
same format. Token ids a trainer passes (a student's samples) are scored as they are; a GGUF only
teaches a student whose tokenizer splits text into the same ids, checked by ``use_tokenizer``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import models
from ..errors import ConfigError, InputError
from .base import Backend, Completion, Request, SamplingParams, ScoreItem, ScoreResult
from .openai_wire import request_seed

log = logging.getLogger(__name__)

INSTALL = "pip install 'reasondistill[llamacpp]' (llama-cpp-python==0.3.36)"


@dataclass(frozen=True, slots=True)
class LlamaCppOptions:
    """``teacher.options`` of the ``llamacpp`` backend."""

    n_ctx: int = 4096  # context window in tokens (prompt + completion); a longer prompt is an error row
    n_threads: int | None = None  # CPU threads; None: llama.cpp's default (half the cores)
    n_gpu_layers: int = 0  # layers offloaded to the GPU in a GPU build (-1: all)
    chat_template: str | None = None  # path to a Jinja chat template; None: the GGUF's own

    def __post_init__(self) -> None:
        if self.n_ctx < 16:
            raise ConfigError(f"teacher.options.n_ctx must be >= 16, got {self.n_ctx}")
        if self.n_threads is not None and self.n_threads < 1:
            raise ConfigError(f"teacher.options.n_threads must be >= 1, got {self.n_threads}")
        if self.n_gpu_layers < -1:
            raise ConfigError(f"teacher.options.n_gpu_layers must be >= -1, got {self.n_gpu_layers}")
        if self.chat_template is not None and not Path(self.chat_template).expanduser().is_file():
            raise ConfigError(f"teacher.options.chat_template: no such file: {self.chat_template}")


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a :class:`ConfigError` that says which extra to install."""
    try:
        import llama_cpp
    except ImportError as e:
        raise ConfigError(f"teacher.backend llamacpp needs llama-cpp-python, which is not installed "
                          f"({e}): {INSTALL}") from e
    return llama_cpp


def gguf_file(spec: str) -> Path:
    """The GGUF file behind ``teacher.model``: a packaged name or a path ending in ``.gguf``."""
    if spec in models.PACKAGED:
        return models.packaged_gguf(spec)
    path = Path(spec).expanduser()
    if path.suffix != ".gguf":
        raise ConfigError(f"teacher.model: the llamacpp backend loads a .gguf file or a packaged model "
                          f"({', '.join(models.PACKAGED)}), got {spec!r}")
    if not path.is_file():
        raise ConfigError(f"teacher.model: GGUF file not found: {path}")
    models.check_gguf(path)
    return path


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The file's SHA-256, computed once per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def identity(path: Path, options: LlamaCppOptions) -> str:
    """``llamacpp:<file name>:<size>:<sha256[:16]>`` (+ the chat template's hash): the file's
    content, not where it lies, so a moved or re-downloaded GGUF keeps its cached samples."""
    ident = f"llamacpp:{path.name}:{path.stat().st_size}:{file_sha256(path)[:16]}"
    if options.chat_template:
        ident += f"+tpl:{file_sha256(Path(options.chat_template).expanduser())[:12]}"
    return ident


def top_entry(logits: Any, token: int, k: int) -> dict[str, Any]:
    """One generated token in our logprob format, from the step's raw logits."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max()
    lp = x - np.log(np.exp(x).sum())
    k = min(k, lp.shape[0])
    idx = np.argpartition(-lp, k - 1)[:k]
    idx = idx[np.argsort(-lp[idx], kind="stable")]
    return {"id": int(token), "logprob": float(lp[token]),
            "top": [[int(i), round(float(lp[i]), 5)] for i in idx]}


class LlamaCppBackend(Backend):
    Options = LlamaCppOptions
    reads_model = local_weights = True
    requires = "llama_cpp"
    can_score = True  # teacher forcing, token by token, on the raw logits

    def __init__(self, model: str, *, n_ctx: int = 4096, n_threads: int | None = None, n_gpu_layers: int = 0,
                 chat_template: str | None = None, batch_size: int = 8) -> None:
        self.options = LlamaCppOptions(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                                       chat_template=chat_template)
        self.llm = None
        self.lib = import_llama_cpp()  # before hashing a large file for nothing
        self.path = gguf_file(model)
        self.identity = identity(self.path, self.options)
        self.name = f"llamacpp:{Path(model).stem if model not in models.PACKAGED else model}"
        self.batch_size = batch_size
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self.llm = self.lib.Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=n_threads,
                                      n_gpu_layers=n_gpu_layers, logits_all=False, verbose=False)
        except ValueError as e:  # llama.cpp refused the file (damaged, or an architecture it does not know)
            raise InputError(f"llama.cpp cannot load this GGUF file: {e}", file=self.path) from None
        template = (Path(chat_template).expanduser().read_text(encoding="utf-8") if chat_template
                    else self.llm.metadata.get("tokenizer.chat_template"))
        if not template:
            raise ConfigError(f"teacher.model: {self.path.name} has no chat template in its metadata; "
                              "give one with teacher.options.chat_template=<file.jinja>")
        specials = dict(eos_token=self._special(self.llm.token_eos()), bos_token=self._special(self.llm.token_bos()))
        self.formatter = Jinja2ChatFormatter(template=template, **specials, add_generation_prompt=True)
        self.full_formatter = Jinja2ChatFormatter(template=template, **specials, add_generation_prompt=False)
        self._vocab = self.lib.llama_model_get_vocab(self.llm.model)
        self._n_vocab = int(self.llm.n_vocab())

    @classmethod
    def identity_of(cls, cfg: Any, options: LlamaCppOptions) -> str:
        return identity(gguf_file(cfg.model), options)

    @classmethod
    def from_config(cls, cfg: Any, options: LlamaCppOptions) -> LlamaCppBackend:
        return cls(cfg.model, n_ctx=options.n_ctx, n_threads=options.n_threads, n_gpu_layers=options.n_gpu_layers,
                   chat_template=options.chat_template, batch_size=cfg.batch_size)

    @property
    def vocab_size(self) -> int | None:
        return self._n_vocab if self.llm is not None else None

    def _special(self, token: int) -> str:
        """A special token's text, for templates that write ``{{ bos_token }}`` ('' when there is none)."""
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.formatter(messages=[dict(m) for m in messages]).prompt

    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """The rendered conversation as token ids (the template writes any BOS itself)."""
        return self.llm.tokenize(self.render(messages).encode("utf-8"), add_bos=False, special=True)

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        if self.llm is None:
            raise RuntimeError("llamacpp backend used after close()")
        return [self._one(r, sampling) for r in requests]

    def _one(self, request: Request, sampling: SamplingParams) -> Completion:
        prompt = self.prompt_ids(request.messages)
        room = self.options.n_ctx - len(prompt)
        if room < 1:
            msg = f"prompt of {len(prompt)} tokens does not fit n_ctx={self.options.n_ctx}"
            log.warning("%s: %s: %s (an error trace)", self.name, request.problem.id, msg)
            return Completion(text="", finish_reason="error", prompt_tokens=len(prompt), meta={"error": msg})
        budget = min(sampling.max_new_tokens, room)
        greedy = sampling.temperature <= 0
        self.llm.set_seed(request_seed(request, sampling))
        k = sampling.top_logprobs
        ids: list[int] = []
        logprobs: list[dict[str, Any]] | None = [] if k > 0 else None
        finish, text = "length", None
        if budget > 0:
            steps = self.llm.generate(prompt, temp=0.0 if greedy else sampling.temperature,
                                      top_p=1.0 if greedy else sampling.top_p, top_k=0, min_p=0.0,
                                      typical_p=1.0, repeat_penalty=1.0)
            for tok in steps:
                if self.lib.llama_vocab_is_eog(self._vocab, tok):
                    finish = "stop"
                    break
                ids.append(tok)
                if logprobs is not None:
                    logits = self.lib.llama_get_logits_ith(self.llm.ctx, -1)
                    logprobs.append(top_entry(_as_array(logits, self._n_vocab), tok, k))
                if sampling.stop:
                    so_far = self._decode(ids, prompt)
                    hit = [so_far.index(s) for s in sampling.stop if s in so_far]
                    if hit:
                        text, finish = so_far[: min(hit)], "stop"
                        break
                if len(ids) >= budget:
                    break
        if text is None:
            text = self._decode(ids, prompt)
        return Completion(text=text, finish_reason=finish, prompt_tokens=len(prompt), completion_tokens=len(ids),
                          logprobs=logprobs)

    # ---- scoring ----

    def use_tokenizer(self, tokenizer: Any) -> None:
        """Refuse a student whose tokenizer splits a probe text into other ids than the GGUF does: its
        logprobs would name other tokens (ids are compared, never strings)."""
        probe = "Question: what is 12 + 30?\nAnswer: 42."
        mine = list(self.llm.tokenize(probe.encode("utf-8"), add_bos=False, special=False))
        theirs = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
        if mine != theirs:
            raise ConfigError(f"{self.name}: the GGUF splits text into other token ids than the student's tokenizer "
                              f"({mine[:6]}... vs {theirs[:6]}...), so its logprobs cannot teach the student token "
                              f"by token; use a GGUF of the student's model family")

    def encode_item(self, item: ScoreItem) -> tuple[list[int], list[int]]:
        """``(prompt_ids, completion_ids)``: ids given with the item as they are; a conversation rendered
        with the GGUF's template, the completion as the assistant turn (its end of turn included); a
        string as plain text."""
        if item.prompt_ids is not None and item.completion_ids is not None:
            return list(item.prompt_ids), list(item.completion_ids)
        if isinstance(item.prompt, str):
            prompt, full = item.prompt, item.prompt + item.completion
        else:
            messages = [dict(m) for m in item.prompt]
            prompt = self.render(messages)
            full = self.full_formatter(messages=messages + [{"role": "assistant", "content": item.completion}]).prompt
        prompt_ids, full_ids = (self.llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in (prompt, full))
        if full_ids[:len(prompt_ids)] != prompt_ids:
            raise ConfigError(f"{self.name}: the prompt's tokens are not a prefix of prompt + completion, so the "
                              f"completion's tokens cannot be told apart")
        return list(prompt_ids), list(full_ids[len(prompt_ids):])

    def score(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        if self.llm is None:
            raise RuntimeError("llamacpp backend used after close()")
        return [self._score_one(*self.encode_item(it), top_k) for it in items]

    def _score_one(self, prompt: list[int], completion: list[int], k: int) -> ScoreResult:
        if not prompt or len(prompt) + len(completion) > self.options.n_ctx:
            raise ConfigError(f"{self.name}: a scored text of {len(prompt)} prompt + {len(completion)} completion "
                              f"tokens needs a non-empty prompt within n_ctx={self.options.n_ctx} (teacher.options.n_ctx)")
        if bad := [t for t in prompt + completion if not 0 <= t < self._n_vocab]:
            raise ConfigError(f"{self.name}: token id {bad[0]} is outside the GGUF's {self._n_vocab} ids: teacher "
                              f"and student must share a tokenizer")
        self.llm.reset()  # nothing of an earlier text stays in the context
        self.llm.eval(prompt)
        entries = []
        for i, tok in enumerate(completion):
            logits = self.lib.llama_get_logits_ith(self.llm.ctx, -1)
            entries.append(top_entry(_as_array(logits, self._n_vocab), tok, k))
            if i + 1 < len(completion):
                self.llm.eval([tok])
        return ScoreResult(list(completion), entries)

    def _decode(self, ids: list[int], prompt: list[int]) -> str:
        return self.llm.detokenize(ids, prev_tokens=prompt).decode("utf-8", errors="replace")

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None and hasattr(llm, "close"):
            llm.close()


def _as_array(logits: Any, n_vocab: int | None) -> Any:
    """The step's logits as numpy: a ctypes float pointer from llama.cpp, or an array already."""
    import numpy as np

    if isinstance(logits, np.ndarray):
        return logits
    return np.ctypeslib.as_array(logits, shape=(n_vocab,)).copy()


__all__ = ["LlamaCppBackend", "LlamaCppOptions", "gguf_file", "identity", "import_llama_cpp", "top_entry"]
