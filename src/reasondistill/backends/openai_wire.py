"""The OpenAI wire format, apart from the backend that speaks it: answers into our
:class:`~reasondistill.backends.base.Completion` logprob entries, error bodies and transport
failures into one-line problems, ``Retry-After`` into seconds, and the per-sample seed and
plain-text prompt of a request. Pure functions of bytes and headers, so each is tested alone.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import Request, SamplingParams
from .masking import mask


class BadResponse(Exception):
    """A 200 answer that is not an OpenAI completion (unreadable JSON, no choices...)."""


def render_plain(messages: Sequence[dict[str, str]]) -> str:
    """The conversation as one plain-text prompt for ``/completions``: contents joined by blank
    lines (few-shot answers included), ending with a newline for the answer to follow."""
    return "\n\n".join(m["content"] for m in messages) + "\n"


def request_seed(request: Request, sampling: SamplingParams) -> int:
    """A per-sample seed from the conversation, sample index and ``generate.seed``."""
    payload = json.dumps([list(request.messages), request.sample_idx, sampling.seed], sort_keys=True)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:4], "little") & 0x7FFFFFFF


def parse_retry_after(headers: Any) -> float | None:
    """Seconds asked by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def token_id(token: Any) -> int | None:
    """The id in vLLM's ``"token_id:123"`` form, else ``None``."""
    if isinstance(token, str) and token.startswith("token_id:"):
        try:
            return int(token[len("token_id:"):])
        except ValueError:
            return None
    return None


def logprob_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    tid = token_id(token)
    ids = [token_id(t) for t, _ in top]
    if tid is not None and all(i is not None for i in ids):
        return {"id": tid, "logprob": float(logprob), "top": [[i, round(float(lp), 5)] for i, (_, lp) in zip(ids, top)]}
    return {"id": None, "token": token, "logprob": float(logprob), "top": [],
            "top_tokens": [[t, round(float(lp), 5)] for t, lp in top]}


def chat_logprobs(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``choices[0].logprobs.content`` of a chat completion into ``Completion.logprobs``."""
    return [logprob_entry(e["token"], e["logprob"], [(t["token"], t["logprob"]) for t in e.get("top_logprobs") or []])
            for e in content]


def completions_logprobs(lp: dict[str, Any]) -> list[dict[str, Any]]:
    """``choices[0].logprobs`` of a legacy completion (``tokens``, ``token_logprobs``,
    ``top_logprobs`` as one ``{token: logprob}`` per position) into ``Completion.logprobs``."""
    tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
    return [logprob_entry(tok, tlp if tlp is not None else -math.inf, sorted((top or {}).items(), key=lambda kv: -kv[1]))
            for tok, tlp, top in zip(lp["tokens"], lp["token_logprobs"], tops)]


def text_of(content: Any) -> str:
    """A chat message's content: a string, ``None`` (empty), or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


def error_message(content: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body's start."""
    try:
        message = json.loads(content)["error"]["message"]
        if isinstance(message, str) and message:
            return snippet(message.encode())
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        pass
    return snippet(content)


def public_url(url: str) -> str:
    """``url`` without a ``user:password@`` part (for messages and identities)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query, ""))


def transport_problem(url: str, e: Exception) -> str:
    """A failed connection, naming the URL (``connection refused`` means nothing listens there)."""
    what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return f"cannot reach {url} ({what}); check teacher.options.base_url and that the server is up"


def snippet(content: bytes, limit: int = 200) -> str:
    """The start of a body, credentials masked first (a key across the cut would survive it)."""
    text = mask(content.decode("utf-8", errors="replace")).strip()
    return text if len(text) <= limit else text[:limit] + "..."
