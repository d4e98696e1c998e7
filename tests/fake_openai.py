"""A fault-injecting fake OpenAI-compatible server for tests and the concurrency benchmark.

A threaded ``http.server`` on 127.0.0.1 (random port) answering ``POST /v1/chat/completions``
and ``POST /v1/completions``. A normal answer works out the last sum in the prompt
(``"... 3 + 4 - 1 ="`` -> ``"3 + 4 - 1 = 6.\\nAnswer: 6"``), so a pipeline behind it has
correct traces to train on; it is deterministic, so greedy answers repeat exactly.

Faults are injected by rules: ``server.fault("503", match="p3", times=2)`` makes the first two
requests whose prompt contains ``p3`` answer 503 (``times=None``: every one, until
``clear()``). Every request is logged (``server.log``) with the fault it met.

Fault kinds: ``429`` (no Retry-After), ``429-retry-after`` (``Retry-After: 1``), ``500``,
``503``, ``hang`` (answers only after ``hang_s``, past the client's timeout), ``reset`` (a
connection reset halfway through the body), ``malformed`` (a 200 whose body is not JSON),
``no-choices`` (a 200 without ``choices``), ``empty`` (an empty completion), ``length`` (cut
short with ``finish_reason: length``), ``400-echo`` (a 400 whose message echoes the request's
Authorization header, as some servers echo a bad key), ``401-echo`` (a 401 whose message is
``echo_template`` with ``{auth}`` the Authorization header received: long bodies, keys across
the snippet's cut or broken over lines; ``echo_raw``: a plain-text body instead of JSON).

Scoring: a ``/completions`` request with ``echo: true`` and ``logprobs: k`` gets the logprobs of
the prompt's own tokens (vLLM's behaviour). With ``tokenizer`` set, the prompt is split by it and
tokens come back as its decoded strings (or ``token_id:N``); without, by words. Each token's
logprobs are a pure function of the tokens up to it (so a text scores the same alone or in any
batch); ``score_noise > 0`` adds fresh Gaussian noise to every logprob of every answer, as a
server with non-deterministic kernels would.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("429", "429-retry-after", "500", "503", "hang", "reset", "malformed", "no-choices", "empty", "length",
         "400-echo", "401-echo")
SUM = re.compile(r"-?\d+(?:\s*[+\-]\s*-?\d+)+")


@dataclass
class Rule:
    kind: str
    match: str | None = None  # substring of the prompt; None: every request
    times: int | None = 1  # how many matching requests meet the fault; None: all
    hits: int = 0


@dataclass
class Logged:
    path: str
    prompt: str
    fault: str | None
    auth: str | None
    body: dict[str, Any]
    start: float
    end: float = 0.0
    client: tuple[str, int] | None = None  # the caller's address: which process sent it (psutil)


def answer_for(prompt: str) -> str:
    """The fake model's answer: the last sum in the prompt, worked out."""
    sums = SUM.findall(prompt)
    if not sums:
        return "I cannot tell.\nAnswer: 0"
    expr = sums[-1].strip()
    value = sum(int(t.replace(" ", "")) for t in re.findall(r"[+\-]?\s*\d+", expr))
    return f"I work it out: {expr} = {value}.\nAnswer: {value}"


def _token_id(word: str) -> int:
    return zlib.crc32(word.encode()) % 49152


@dataclass
class FakeOpenAI:
    latency_s: float = 0.0  # artificial latency of every answer (benchmark)
    api_key: str | None = None  # when set, requests without "Bearer <key>" get 401
    hang_s: float = 2.0
    model: str = "fake-model"
    rules: list[Rule] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    max_in_flight: int = 0
    tokenizer: Any = None  # splits echoed prompts into real token ids (scoring); None: words
    score_noise: float = 0.0  # std of the noise added to echoed logprobs (0: deterministic)
    ignore_logprobs: bool = False  # drop echo/logprobs from requests, as transformers serve does
    echo_template: str = "invalid key: {auth}"  # the 401-echo message
    echo_raw: bool = False  # 401-echo: a text/plain body rather than an OpenAI error object

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- control ----

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fault(self, kind: str, match: str | None = None, times: int | None = 1) -> Rule:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {KINDS}")
        rule = Rule(kind, match, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def requests_for(self, match: str) -> list[Logged]:
        return [r for r in self.log if match in r.prompt]

    def start(self) -> FakeOpenAI:
        server = self

        class Handler(_Handler):
            fake = server

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops connections when many open at once

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- serving ----

    def _take_fault(self, prompt: str) -> str | None:
        with self._lock:
            for rule in self.rules:
                if (rule.match is None or rule.match in prompt) and (rule.times is None or rule.hits < rule.times):
                    rule.hits += 1
                    return rule.kind
        return None

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def split(self, text: str) -> tuple[list[int], list[str]]:
        """``(ids, strings)`` of ``text`` (the strings concatenate to it)."""
        if self.tokenizer is None:
            words = re.findall(r"\s*\S+|\s+", text)
            return [_token_id(w) for w in words], words
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids, self.tokenizer.batch_decode([[i] for i in ids])

    def echo_logprobs(self, text: str | list[int], k: int, as_ids: bool) -> dict[str, Any]:
        """The legacy ``logprobs`` object of ``text`` (or token ids) echoed, with ``k`` alternatives per token."""
        if isinstance(text, list):
            ids, strings = list(text), self.tokenizer.batch_decode([[i] for i in text])
        else:
            ids, strings = self.split(text)
        pool_ids, pool_strings = self.split(" the of and to in is that for it as with be on was 0 1 2 3 4 5 6 7 8 9")
        noise = random.Random() if self.score_noise else None
        tokens, token_lps, tops, offsets, at = [], [], [], [], 0
        digest = hashlib.sha256()
        for j, (tid, text_j) in enumerate(zip(ids, strings)):
            digest.update(f"{tid},".encode())
            name = f"token_id:{tid}" if as_ids else text_j
            tokens.append(name)
            offsets.append(at)
            at += len(text_j)
            if j == 0:  # the first token has no context, hence no logprob
                token_lps.append(None)
                tops.append(None)
                continue
            rng = random.Random(digest.hexdigest())
            p_token = rng.uniform(0.3, 0.9)
            alts = sorted({(i, st) for i, st in zip(pool_ids, pool_strings) if i != tid and st != text_j})
            rng.shuffle(alts)
            rest = 1.0 - p_token
            probs = sorted((rest * rng.uniform(0.05, 0.9) / k for _ in range(k - 1)), reverse=True)
            top = {name: math.log(p_token)}
            for (i, st), p in zip(alts, probs):
                top[f"token_id:{i}" if as_ids else st] = math.log(p)
            if noise is not None:
                top = {t: v + noise.gauss(0.0, self.score_noise) for t, v in top.items()}
            token_lps.append(top[name])
            tops.append(top)
        return {"tokens": tokens, "token_logprobs": token_lps, "top_logprobs": tops, "text_offset": offsets}

    def completion(self, path: str, body: dict[str, Any], prompt: str, kind: str | None) -> dict[str, Any]:
        if self.ignore_logprobs:
            body = {k: v for k, v in body.items() if k not in ("echo", "logprobs", "top_logprobs")}
        if path.endswith("/completions") and not path.endswith("/chat/completions") and body.get("echo"):
            k = int(body.get("logprobs") or 0)
            as_ids = bool(body.get("return_tokens_as_token_ids"))
            sent = body.get("prompt")
            lp = self.echo_logprobs(sent if isinstance(sent, list) else prompt, k, as_ids) if k else None
            n = len(lp["tokens"]) + 1 if lp else 0
            if lp:  # the one generated token after the echo
                for key, value in (("tokens", "!"), ("token_logprobs", -0.5), ("top_logprobs", {"!": -0.5}),
                                   ("text_offset", len(prompt))):
                    lp[key].append(value)
            choice = {"index": 0, "finish_reason": "length", "text": prompt + "!", "logprobs": lp}
            return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                    "model": body.get("model", self.model), "choices": [choice],
                    "usage": {"prompt_tokens": n - 1, "completion_tokens": 1, "total_tokens": n}}
        words = answer_for(prompt).split(" ")
        finish = "stop"
        limit = int(body.get("max_tokens") or 10_000)
        if kind == "empty":
            words = []
        elif kind == "length":
            limit = min(limit, 3)
        if len(words) > limit:
            words, finish = words[:limit], "length"
        text = " ".join(words)
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
        as_ids = bool(body.get("return_tokens_as_token_ids"))

        def tok(t: str) -> str:
            return f"token_id:{_token_id(t)}" if as_ids else t

        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(tokens),
                 "total_tokens": len(prompt.split()) + len(tokens)}
        k = 0
        if path.endswith("/chat/completions"):
            k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish,
                                      "message": {"role": "assistant", "content": text}}
            if k:
                choice["logprobs"] = {"content": [
                    {"token": tok(t), "logprob": -0.1, "bytes": list(t.encode()),
                     "top_logprobs": [{"token": tok(t), "logprob": -0.1}]
                     + [{"token": tok(f"{t}~{j}"), "logprob": -2.0 - j} for j in range(1, k)]}
                    for t in tokens]}
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", self.model), "choices": [choice], "usage": usage}
        k = int(body.get("logprobs") or 0)
        choice = {"index": 0, "finish_reason": finish, "text": text}
        if k:
            choice["logprobs"] = {"tokens": [tok(t) for t in tokens], "token_logprobs": [-0.1] * len(tokens),
                                  "top_logprobs": [{tok(t): -0.1, **{tok(f"{t}~{j}"): -2.0 - j for j in range(1, k)}}
                                                   for t in tokens]}
        return {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model", self.model), "choices": [choice], "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    timeout = 10  # an idle keep-alive connection is dropped after this
    fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a hung request timed out)
            self.close_connection = True

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps({"error": {"message": message, "type": "fake", "code": status}}).encode()
        self._send(status, payload, headers)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": self.fake.model}]}).encode())
        else:
            self._error(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "body is not JSON")
            return
        if self.path.endswith("/chat/completions"):
            msgs = body.get("messages") or []
            prompt = str(msgs[-1].get("content", "")) if msgs else ""
        elif self.path.endswith("/completions"):
            prompt = body.get("prompt", "")
            if isinstance(prompt, list) and fake.tokenizer is not None:  # token ids (vLLM accepts them)
                prompt = fake.tokenizer.decode(prompt)
            prompt = str(prompt)
        else:
            self._error(404, f"no route {self.path}")
            return
        auth = self.headers.get("Authorization")
        kind = fake._take_fault(prompt)
        entry = Logged(self.path, prompt, kind, auth, body, time.monotonic(), client=self.client_address[:2])
        with fake._lock:
            fake.log.append(entry)
        fake._enter()
        try:
            self._answer(body, prompt, kind, auth)
        finally:
            entry.end = time.monotonic()
            fake._leave()

    def _answer(self, body: dict[str, Any], prompt: str, kind: str | None, auth: str | None) -> None:
        fake = self.fake
        if fake.latency_s:
            time.sleep(fake.latency_s)
        if fake.api_key is not None and auth != f"Bearer {fake.api_key}":
            self._error(401, "missing or wrong API key")
            return
        if kind in ("429", "429-retry-after"):
            self._error(429, "rate limited", {"Retry-After": "1"} if kind == "429-retry-after" else None)
        elif kind in ("500", "503"):
            self._error(int(kind), "server trouble")
        elif kind == "400-echo":
            self._error(400, f"request refused for credentials {auth}")
        elif kind == "401-echo":
            message = fake.echo_template.format(auth=auth)
            if fake.echo_raw:
                self._send(401, message.encode())
            else:
                self._error(401, message)
        elif kind == "hang":
            fake._stopping.wait(fake.hang_s)
            self._send(200, json.dumps(fake.completion(self.path, body, prompt, None)).encode())
        elif kind == "reset":
            payload = json.dumps(fake.completion(self.path, body, prompt, None)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            # SO_LINGER 0: close with a RST, as a crashed server or a proxy dropping the connection does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-fake", "choices": [{"message": {"content": "Answer')
        elif kind == "no-choices":
            self._send(200, json.dumps({"id": "chatcmpl-fake", "object": "chat.completion",
                                        "usage": {"prompt_tokens": 1, "completion_tokens": 0}}).encode())
        else:  # None, "empty", "length"
            self._send(200, json.dumps(fake.completion(self.path, body, prompt, kind)).encode())
