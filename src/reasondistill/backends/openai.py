"""A teacher behind an OpenAI-compatible HTTP server: vLLM, SGLang, llama.cpp's server,
``transformers serve``, or a hosted API.

Each request is one HTTP call to ``/chat/completions`` (``endpoint: chat``, the server
applies the model's chat template) or ``/completions`` (``endpoint: completions``, the
conversation is sent as plain text: message contents joined by blank lines). Up to
``concurrency`` requests are in flight at once, across batches; a failed call is retried
with exponential backoff and jitter on 429, 5xx, timeouts, dropped connections and
unreadable answers, waiting at least what a ``Retry-After`` header asks. A request that
still fails becomes a ``finish_reason="error"`` completion: the sample cache does not keep
it and the generate stage runs again on the next invocation, paying only for those.

The API key is read from the environment variable named by ``api_key_env`` when the backend
is built; it is sent in the ``Authorization`` header and nowhere else (not in the identity,
the options, traces, the cache, manifests or error messages). A server that echoes it back
(or any ``Bearer``/``api-key`` value) has it masked in the whole answer body before any part of
it is read, cut to a snippet or stored (``masking.py``). Error texts name the URL, the status and
the option to check; a connection that cannot be opened gives up after ``connect_timeout_s``.

Logprobs (``generate.top_logprobs > 0``) map into the ``Completion.logprobs`` format of the
transformers backend, per token ``{"id", "logprob", "top": [[id, logprob], ...]}`` plus the
token string. Servers return tokens as strings; ids are known only where the server gives
them (vLLM with ``token_ids: true`` answers ``"token_id:123"``). Without ids each entry is
``{"id": None, "token", "logprob", "top": [], "top_tokens": [[token, logprob], ...]}``:
readable, but not usable for KD, which needs ids (the logprob store refuses them).

Scoring (``score``, a teacher for KD/GKD/KDRL) sends prompt + completion as one text to
``/completions`` with ``echo: true, logprobs: k`` and ``max_tokens: score_max_tokens``: the
server returns the logprobs of the echoed text, and the tokens from the completion's first
character on are kept (by ``text_offset``). Conversations are rendered with the chat template
of the tokenizer given by ``use_tokenizer`` (the student's), plain text without one. Token
strings map to ids through that tokenizer (vLLM's ``token_ids: true`` sends ids); a string
that maps to no id, or to several, is refused. Items that carry token ids (a student's samples)
go as a token-id prompt with ``score_ids: true`` (vLLM, SGLang), so they need not re-tokenize.
A 200 answer without logprobs means the server ignores them (``transformers serve`` does): it is
refused at once, not retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import check_url
from ..errors import ConfigError, ServiceError
from .base import Backend, Completion, Request, SamplingParams, ScoreItem, ScoreResult, run_blocking
from .masking import mask, mask_bytes, register
from .openai_wire import (BadResponse, chat_logprobs, completions_logprobs, error_message, parse_retry_after,
                          public_url, render_plain, request_seed, snippet, text_of, token_id, transport_problem)

log = logging.getLogger(__name__)

#: statuses worth another try (besides every 5xx)
RETRY_STATUSES = frozenset({408, 409, 425, 429})
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """``teacher.options`` of the ``openai`` backend."""

    base_url: str = "http://127.0.0.1:8000/v1"  # the server's API root, up to and including /v1
    model: str | None = None  # the server's model name; None: teacher.model
    endpoint: str = "chat"  # chat (server-side chat template) | completions (plain-text prompt)
    api_key_env: str | None = None  # name of the environment variable holding the API key (never the key)
    timeout_s: float = 120.0  # whole-request limit, connection to last byte
    connect_timeout_s: float = 10.0  # limit on opening a connection (a dead or firewalled host fails in this time)
    max_retries: int = 4  # further attempts after the first
    backoff_s: float = 0.5  # first retry waits about this long, doubling each time (with jitter)
    max_backoff_s: float = 30.0  # cap on one wait, a Retry-After included
    concurrency: int = 8  # requests in flight at once
    send_seed: bool = True  # send a per-sample seed (reproducible sampling where the server honours it)
    token_ids: bool = False  # ask for token ids in logprobs (vLLM's return_tokens_as_token_ids)
    extra_body: dict[str, Any] = field(default_factory=dict)  # more request fields (e.g. top_k); part of the identity
    score_max_tokens: int = 1  # max_tokens of a scoring (echo) request; 0 where the server allows it
    score_ids: bool = False  # send token ids as the prompt when scoring the student's own samples (vLLM, SGLang)

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"teacher.options.endpoint must be one of {', '.join(ENDPOINTS)}, got {self.endpoint!r}")
        check_url("teacher.options.base_url", self.base_url)
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ConfigError("teacher.options.timeout_s and connect_timeout_s must be > 0")
        if self.max_retries < 0:
            raise ConfigError("teacher.options.max_retries must be >= 0")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ConfigError("teacher.options.backoff_s and max_backoff_s must be >= 0")
        if self.concurrency < 1:
            raise ConfigError("teacher.options.concurrency must be >= 1")
        if self.score_max_tokens < 0:
            raise ConfigError("teacher.options.score_max_tokens must be >= 0")
        if self.api_key_env is not None and not self.api_key_env.strip():
            raise ConfigError("teacher.options.api_key_env must name an environment variable")
        if self.api_key_env and self.api_key_env.startswith(("sk-", "Bearer ")):
            raise ConfigError("teacher.options.api_key_env takes the name of an environment variable, not the key")


class ScoreFailed(ServiceError):
    """A scoring request failed after its retries: training cannot go on without the teacher (exit 1,
    the server's failure, naming the URL and the cause)."""


@dataclass
class _Session:
    """An HTTP client and the in-flight gate, bound to one event loop (``draw`` runs one per call)."""

    client: Any
    gate: asyncio.Semaphore
    users: int = 0


class OpenAIBackend(Backend):
    Options = OpenAIOptions
    can_score = True  # where the server answers echo + logprobs on /completions
    reads_model = True  # the served model's name (options.model overrides it)
    requires = "httpx2"  # HTTP through httpx2, not the openai package

    def __init__(self, model: str, *, base_url: str = OpenAIOptions.base_url, endpoint: str = "chat",
                 api_key_env: str | None = None, timeout_s: float = 120.0, connect_timeout_s: float = 10.0,
                 max_retries: int = 4,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, concurrency: int = 8,
                 send_seed: bool = True, token_ids: bool = False, extra_body: dict[str, Any] | None = None,
                 batch_size: int = 32, score_max_tokens: int = 1, score_ids: bool = False) -> None:
        try:
            import httpx2  # noqa: F401 - checked here so a missing client fails at build, not mid-run
        except ImportError as e:  # pragma: no cover - a dependency of transformers' huggingface_hub
            raise ConfigError("the openai backend needs the httpx2 package: pip install 'httpx2>=2,<3'") from e
        client_log = logging.getLogger("httpx2")
        if client_log.level == logging.NOTSET:  # one INFO line per request would bury the CLI's progress
            client_log.setLevel(logging.WARNING)
        self.options = OpenAIOptions(base_url=base_url, model=model, endpoint=endpoint, api_key_env=api_key_env,
                                     timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                                     max_retries=max_retries, backoff_s=backoff_s,
                                     max_backoff_s=max_backoff_s, concurrency=concurrency, send_seed=send_seed,
                                     token_ids=token_ids, extra_body=dict(extra_body or {}),
                                     score_max_tokens=score_max_tokens, score_ids=score_ids)
        self.model = model
        self.url = base_url.rstrip("/") + ENDPOINTS[endpoint]
        self.identity = self.identity_of(None, self.options)
        self.name = f"openai:{model.rstrip('/').rsplit('/', 1)[-1]}"
        self.batch_size = batch_size
        # batches the sampling loop keeps in flight: enough to fill `concurrency` with one batch to spare,
        # so a slow request at the end of a batch does not leave the connection slots idle
        self.max_concurrency = math.ceil(concurrency / batch_size) + 1
        self._key = _read_key(api_key_env)
        self._sessions: dict[asyncio.AbstractEventLoop, _Session] = {}
        self._jitter = random.Random()
        self.tokenizer: Any = None
        self._ids_by_string: dict[str, int | None] | None = None

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend({self.identity!r})"

    @classmethod
    def identity_of(cls, cfg: Any, options: OpenAIOptions) -> str:
        """``openai:<endpoint>:<model>@<base_url>`` (+ a hash of ``extra_body``), without the key
        or any network call. The key, timeouts, retries and concurrency change no sample."""
        model = options.model or (cfg.model if cfg is not None else "")
        url = public_url(options.base_url.rstrip("/"))  # no user:password in an identity
        ident = f"openai:{options.endpoint}:{model}@{url}"
        if options.extra_body:
            digest = hashlib.sha256(json.dumps(options.extra_body, sort_keys=True).encode()).hexdigest()[:12]
            ident += f"+{digest}"
        return ident

    @classmethod
    def from_config(cls, cfg: Any, options: OpenAIOptions) -> OpenAIBackend:
        return cls(options.model or cfg.model, base_url=options.base_url, endpoint=options.endpoint,
                   api_key_env=options.api_key_env, timeout_s=options.timeout_s,
                   connect_timeout_s=options.connect_timeout_s, max_retries=options.max_retries,
                   backoff_s=options.backoff_s, max_backoff_s=options.max_backoff_s,
                   concurrency=options.concurrency, send_seed=options.send_seed, token_ids=options.token_ids,
                   extra_body=options.extra_body, batch_size=cfg.batch_size,
                   score_max_tokens=options.score_max_tokens, score_ids=options.score_ids)

    # ---- the contract ----

    def complete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        return run_blocking(self.acomplete(requests, sampling))

    async def acomplete(self, requests: Sequence[Request], sampling: SamplingParams) -> list[Completion]:
        return await self._each(requests, lambda session, r: self._request(session, r, sampling))

    def use_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer, self._ids_by_string = tokenizer, None

    def score(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        return run_blocking(self.ascore(items, top_k))

    async def ascore(self, items: Sequence[ScoreItem], top_k: int) -> list[ScoreResult]:
        return await self._each(items, lambda session, it: self._score_one(session, it, top_k))

    async def _each(self, items: Sequence[Any], call: Callable[[Any, Any], Awaitable[Any]]) -> list[Any]:
        """``call(session, item)`` for every item at once on this loop's session, in order."""
        if not items:
            return []
        session = self._open()
        try:
            return list(await asyncio.gather(*(call(session, it) for it in items)))
        finally:
            session.users -= 1
            if session.users == 0:  # the last batch in flight on this loop: release the connections
                self._sessions.pop(asyncio.get_running_loop(), None)
                await session.client.aclose()

    def score_texts(self, item: ScoreItem) -> tuple[str, str]:
        """``(prompt_text, full_text)`` for one item; the completion is ``full_text[len(prompt_text):]``."""
        tok = self.tokenizer
        if isinstance(item.prompt, str):
            return item.prompt, item.prompt + item.completion
        messages = [dict(m) for m in item.prompt]
        if tok is not None and getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(messages + [{"role": "assistant", "content": item.completion}],
                                           tokenize=False)
            if not full.startswith(prompt):
                raise ConfigError("the chat template does not render the prompt as a prefix of prompt + completion, "
                                  "so the completion's tokens cannot be told apart")
            return prompt, full
        prompt = render_plain(messages)
        return prompt, prompt + item.completion

    def score_body(self, text: str | list[int], top_k: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "prompt": text, "echo": True, "logprobs": top_k,
                                "max_tokens": self.options.score_max_tokens, "temperature": 0.0}
        if self.options.token_ids:
            body["return_tokens_as_token_ids"] = True
        body.update(self.options.extra_body)
        return body

    async def _score_one(self, session: _Session, item: ScoreItem, top_k: int) -> ScoreResult:
        url = self.options.base_url.rstrip("/") + ENDPOINTS["completions"]
        if self.options.score_ids and item.prompt_ids is not None and item.completion_ids is not None:
            ids = list(item.prompt_ids) + list(item.completion_ids)
            body = self.score_body(ids, top_k)
            parse = lambda content: self.parse_score(content, 0, 0, top_k, ids=ids,  # noqa: E731
                                                     n_completion=len(item.completion_ids))
        else:
            prompt, full = self.score_texts(item)
            body = self.score_body(full, top_k)
            parse = lambda content: self.parse_score(content, len(prompt), len(full), top_k)  # noqa: E731
        result, problem, attempts = await self._post(session, url, body, parse, "scoring request")
        if result is None:
            raise ScoreFailed(f"{self.name}: scoring request to {url} failed after {attempts} attempt(s): {problem}"
                              " (the server must answer echo + logprobs on /completions)")
        return result

    def parse_score(self, content: bytes, start: int, end: int, top_k: int, *, ids: list[int] | None = None,
                    n_completion: int = 0) -> ScoreResult:
        """The completion's tokens (echoed text from character ``start`` to ``end``; with ``ids``
        sent as the prompt, the last ``n_completion`` of them) of a 200 answer."""
        try:
            data = json.loads(content)
            choice = data["choices"][0]
        except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
            raise BadResponse(f"no choices ({type(e).__name__}: {e}): {snippet(content)}") from None
        if isinstance(choice, dict) and not choice.get("logprobs"):  # a capability, not a hiccup: no retry
            raise ConfigError(f"{self.name}: the server answered a scoring request without logprobs, so it does "
                              f"not support echo + logprobs on /completions (transformers serve ignores both); "
                              f"serve the teacher with vLLM or SGLang, or use the transformers backend in-process")
        try:
            lp = choice["logprobs"]
            tokens, token_lps = lp["tokens"], lp["token_logprobs"]
            tops = lp.get("top_logprobs") or [None] * len(tokens)
            offsets = lp.get("text_offset")
        except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
            raise BadResponse(f"no echoed logprobs ({type(e).__name__}: {e}): {snippet(content)}") from None
        if ids is not None:
            if len(tokens) < len(ids):
                raise BadResponse(f"{len(tokens)} echoed tokens for {len(ids)} sent: {snippet(content)}")
            first = len(ids) - n_completion
            entries = []
            for i in range(first, len(ids)):
                if token_lps[i] is None or not tops[i]:
                    raise BadResponse(f"echoed token {i} has no logprobs: {snippet(content)}")
                sent = token_id(tokens[i])
                if sent is not None and sent != ids[i]:
                    raise BadResponse(f"echoed token {i} is id {sent}, {ids[i]} was sent")
                top = sorted(((self.id_of(t), float(v)) for t, v in tops[i].items()), key=lambda p: -p[1])[:top_k]
                entries.append({"id": ids[i], "logprob": float(token_lps[i]), "top": [[a, v] for a, v in top]})
            return ScoreResult(ids[first:], entries)
        if offsets is None:  # cumulative lengths of the token strings
            if any(token_id(t) is not None for t in tokens):
                raise ConfigError("the server sent token ids without text_offset: cannot find the completion's "
                                  "tokens; set teacher.options.token_ids=false")
            offsets, at = [], 0
            for t in tokens:
                offsets.append(at)
                at += len(t)
        ids, entries = [], []
        for i, (tok, off) in enumerate(zip(tokens, offsets)):
            if off < start:
                if i + 1 < len(offsets) and offsets[i + 1] > start:
                    raise ConfigError(f"the server's token {tok!r} spans the end of the prompt and the start of "
                                      f"the completion: its logprobs cannot be split between them")
                continue
            if off >= end:
                break  # the generated token(s) after the echo
            if token_lps[i] is None or not tops[i]:
                raise BadResponse(f"echoed token {i} has no logprobs: {snippet(content)}")
            tid = self.id_of(tok)
            top = sorted(((self.id_of(t), float(v)) for t, v in tops[i].items()), key=lambda p: -p[1])[:top_k]
            ids.append(tid)
            entries.append({"id": tid, "logprob": float(token_lps[i]), "top": [[a, v] for a, v in top]})
        return ScoreResult(ids, entries)

    def id_of(self, token: str) -> int:
        """The id of a token the server sent: ``token_id:N``, or a string the tokenizer maps to one id."""
        tid = token_id(token)
        if tid is not None:
            return tid
        if self.tokenizer is None:
            raise ConfigError(f"the server sent the token string {token!r}, and no tokenizer maps strings to ids: "
                              f"score with the student's tokenizer (use_tokenizer), or set "
                              f"teacher.options.token_ids=true on vLLM")
        if self._ids_by_string is None:
            table: dict[str, int | None] = {}
            n = len(self.tokenizer)
            for i, text in enumerate(self.tokenizer.batch_decode([[i] for i in range(n)])):
                table[text] = None if text in table else i
            self._ids_by_string = table
        if token not in self._ids_by_string:
            raise ConfigError(f"the server's token {token!r} is no token of the student's tokenizer: the teacher "
                              f"does not share the student's vocabulary")
        tid = self._ids_by_string[token]
        if tid is None:
            raise ConfigError(f"the server's token {token!r} decodes from several ids of the student's tokenizer; "
                              f"ask the server for ids (vLLM: teacher.options.token_ids=true)")
        return tid

    def close(self) -> None:
        self._sessions.clear()  # clients close with their last batch; nothing else is held

    # ---- HTTP ----

    def _open(self) -> _Session:
        import httpx2

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            n = self.options.concurrency
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            timeout = httpx2.Timeout(self.options.timeout_s,
                                     connect=min(self.options.connect_timeout_s, self.options.timeout_s))
            client = httpx2.AsyncClient(headers=headers, timeout=timeout,
                                        limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n))
            session = self._sessions[loop] = _Session(client, asyncio.Semaphore(n))
        session.users += 1
        return session

    def body(self, request: Request, sampling: SamplingParams) -> dict[str, Any]:
        """The JSON body for one request (only fields the OpenAI API defines, plus ``extra_body``)."""
        body: dict[str, Any] = {"model": self.model, "max_tokens": sampling.max_new_tokens,
                                "temperature": max(0.0, sampling.temperature)}
        if self.options.endpoint == "chat":
            body["messages"] = [dict(m) for m in request.messages]
        else:
            body["prompt"] = render_plain(request.messages)
        if sampling.temperature > 0:
            body["top_p"] = sampling.top_p
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if self.options.send_seed:
            body["seed"] = request_seed(request, sampling)
        if sampling.top_logprobs > 0:
            if self.options.endpoint == "chat":
                body.update(logprobs=True, top_logprobs=sampling.top_logprobs)
            else:
                body["logprobs"] = sampling.top_logprobs
            if self.options.token_ids:
                body["return_tokens_as_token_ids"] = True
        body.update(self.options.extra_body)
        return body

    async def _request(self, session: _Session, request: Request, sampling: SamplingParams) -> Completion:
        result, problem, attempts = await self._post(session, self.url, self.body(request, sampling),
                                                     lambda content: self.parse(content, sampling),
                                                     request.problem.id)
        if result is not None:
            return result
        log.warning("%s: %s gave up after %d attempt(s): %s (an error trace; the next run retries it)",
                    self.name, request.problem.id, attempts, problem)
        return Completion(text="", finish_reason="error", meta={"error": problem, "attempts": attempts})

    async def _post(self, session: _Session, url: str, body: dict[str, Any], parse: Any, what: str
                    ) -> tuple[Any, str, int]:
        """POST ``body`` with retries; ``(parse(content), "", attempts)``, or ``(None, problem, attempts)``
        (scrubbed of the key) once retries are spent or the failure is not worth another try."""
        import httpx2

        opts = self.options
        shown = public_url(url)
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                async with session.gate:
                    response = await asyncio.wait_for(session.client.post(url, json=body), opts.timeout_s)
                # masked before anything reads, cuts or stores it: a key cut in half is no longer found
                content = mask_bytes(response.content, self._key, generic=response.status_code != 200)
                if response.status_code == 200:
                    try:
                        return parse(content), "", attempt
                    except BadResponse as e:
                        problem, retry = f"bad response: {e}", True
                else:
                    status = response.status_code
                    problem = f"HTTP {status} from {shown}: {error_message(content)}"
                    if status in (401, 403):
                        problem += " (check the key: teacher.options.api_key_env)"
                    retry = status in RETRY_STATUSES or status >= 500
                    retry_after = parse_retry_after(response.headers)
            except httpx2.ConnectTimeout:
                problem, retry = (f"cannot reach {shown}: no connection within {opts.connect_timeout_s:g} s "
                                  f"(teacher.options.connect_timeout_s); check teacher.options.base_url"), True
            except (TimeoutError, httpx2.TimeoutException):
                problem, retry = f"{shown} timed out after {opts.timeout_s:g} s (teacher.options.timeout_s)", True
            except (httpx2.TransportError, httpx2.DecodingError) as e:
                problem, retry = transport_problem(shown, e), True
            problem = self._scrub(problem)
            if not retry or attempt > opts.max_retries:
                return None, problem, attempt
            wait = self._wait(attempt, retry_after)
            log.debug("%s: %s attempt %d: %s; retrying in %.2f s", self.name, what, attempt, problem, wait)
            await asyncio.sleep(wait)

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with equal jitter; never less than the server's Retry-After."""
        base = min(self.options.max_backoff_s, self.options.backoff_s * 2 ** (attempt - 1))
        wait = base / 2 + self._jitter.uniform(0, base / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.options.max_backoff_s)

    def _scrub(self, text: str) -> str:
        """Error text comes from the server; some echo the key back. It never leaves here."""
        return mask(text, self._key)

    # ---- answers ----

    def parse(self, content: bytes, sampling: SamplingParams) -> Completion:
        """One completion from a 200 answer; :class:`BadResponse` when it is not one."""
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadResponse(f"not JSON ({e}): {snippet(content)}") from None
        try:
            choices = data["choices"]
            choice = choices[0]
        except (KeyError, IndexError, TypeError):
            raise BadResponse(f"no choices: {snippet(content)}") from None
        if not isinstance(choice, dict):
            raise BadResponse(f"choice is not an object: {snippet(content)}")
        try:
            if self.options.endpoint == "chat":
                if not isinstance(choice.get("message"), dict):
                    raise BadResponse(f"choice has no message: {snippet(content)}")
                text = text_of(choice["message"].get("content"))
                raw_lp = (choice.get("logprobs") or {}).get("content") if sampling.top_logprobs > 0 else None
                logprobs = chat_logprobs(raw_lp) if raw_lp else None
            else:
                text = choice.get("text")
                if text is None:
                    raise BadResponse(f"choice has no text: {snippet(content)}")
                raw_lp = choice.get("logprobs") if sampling.top_logprobs > 0 else None
                logprobs = completions_logprobs(raw_lp) if raw_lp else None
            if not isinstance(text, str):
                raise BadResponse(f"text is not a string: {snippet(content)}")
            usage = data.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or (len(logprobs) if logprobs else 0))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise BadResponse(f"{type(e).__name__}: {e}: {snippet(content)}") from None
        reason = choice.get("finish_reason")
        finish = "length" if reason == "length" else "stop"
        meta = {} if reason in ("stop", "length") else {"server_finish_reason": reason}
        return Completion(text=text, finish_reason=finish, prompt_tokens=max(0, prompt_tokens),
                          completion_tokens=max(0, completion_tokens), logprobs=logprobs, meta=meta)


def _read_key(env: str | None) -> str | None:
    if not env:
        return None
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"teacher.options.api_key_env names the environment variable {env}, which is not set")
    register(key)  # masked from every error line and log record of this process from now on
    return key
