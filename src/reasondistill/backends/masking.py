"""Masking API keys out of every text that leaves the process: error messages, traces, logs.

Servers echo credentials back in error bodies (``invalid key: Bearer sk-...``). Masking must
happen on the WHOLE text, before anything cuts it to a snippet or splits it into lines: a key
that straddles a cut is no longer the key, and its first half would be stored as is.

Two nets: the keys this process was given (:func:`register`, called where a backend reads its
key), matched even when a server wrapped them over several lines; and any value following
``Bearer``, ``api-key``/``x-api-key`` or ``Authorization`` (a key we were never told about).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_known: dict[str, re.Pattern[str]] = {}

#: between two characters of a known key: whitespace, or a JSON escape of it (a wrapped body)
_GAP = r"(?:\s|\\[nrt])*"
#: a credential's characters (base64, url-safe base64, hex, JWT)
_TOKEN = r"[A-Za-z0-9._~+/=\-]{4,}"
_GENERIC = re.compile(
    r"(?i)(\bbearer\s+|\b(?:x-)?api[-_]?key\b[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?"
    r"|\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer\s+|basic\s+|token\s+)?)" + _TOKEN)


def register(key: str | None) -> None:
    """Mask ``key`` from now on wherever :func:`mask` runs (the CLI's error line and log records)."""
    if key and len(key) >= 4 and key not in _known:
        _known[key] = re.compile(_GAP.join(re.escape(c) for c in key))


def mask(text: str, *keys: str | None, generic: bool = True) -> str:
    """``text`` with ``keys`` and every registered key (also when broken over lines), and (with
    ``generic``) any value after ``Bearer``/``api-key``/``Authorization``, replaced by ``***``."""
    if not text:
        return text
    patterns = list(_known.values())
    patterns += [re.compile(_GAP.join(re.escape(c) for c in k)) for k in keys if k and k not in _known]
    for pattern in patterns:
        text = pattern.sub(MASK, text)
    return _GENERIC.sub(lambda m: m.group(1) + MASK, text) if generic else text


def mask_bytes(content: bytes, *keys: str | None, generic: bool = True) -> bytes:
    """:func:`mask` over a raw answer body (decoded as UTF-8, undecodable bytes kept as they were)."""
    text = content.decode("utf-8", errors="surrogateescape")
    masked = mask(text, *keys, generic=generic)
    return content if masked == text else masked.encode("utf-8", errors="surrogateescape")


class MaskingFilter(logging.Filter):
    """A handler filter masking every record's final message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:  # a traceback's text is formatted later: keep it clean
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_filter() -> None:
    """Mask the records of every handler of the root logger (call after logging is configured)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
