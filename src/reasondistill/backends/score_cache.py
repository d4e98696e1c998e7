"""Teacher scores cached like samples: the same teacher, text and ``top_k`` are scored once.

Entries live in a :class:`~reasondistill.backends.cache.SampleCache` file of their own
(identity ``score:<teacher identity>``), one ``Completion`` per scored text whose ``logprobs``
are the per-token entries and ``meta.token_ids`` the completion's ids, so a killed run resumes
with what it already paid for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from .base import Backend, Completion, ScoreItem, ScoreResult
from .cache import SampleCache


def score_key(identity: str, item: ScoreItem, top_k: int) -> str:
    prompt = item.prompt if isinstance(item.prompt, str) else [dict(m) for m in item.prompt]
    payload = {"teacher": identity, "prompt": prompt, "completion": item.completion, "top_k": top_k}
    if item.prompt_ids is not None:
        payload["ids"] = [list(item.prompt_ids), list(item.completion_ids or ())]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def cached_score(backend: Backend, items: Sequence[ScoreItem], top_k: int, root: str | Path | None
                 ) -> tuple[list[ScoreResult], int]:
    """``(results, n_scored_now)``: every item's score, from the cache under ``root`` where present
    (``None``: no cache), the rest from ``backend`` in batches of its ``batch_size``."""
    results: list[ScoreResult | None] = [None] * len(items)
    cache = SampleCache(root, f"score:{backend.identity}") if root is not None else None
    keys = [score_key(backend.identity, it, top_k) for it in items]
    todo = []
    for i, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[i] = ScoreResult(list(hit.meta["token_ids"]), list(hit.logprobs or []))
        else:
            todo.append(i)
    for start in range(0, len(todo), backend.batch_size):
        rows = todo[start:start + backend.batch_size]
        scored = backend.score([items[i] for i in rows], top_k)
        for i, r in zip(rows, scored):
            results[i] = r
        if cache is not None:
            cache.put_many([(keys[i], Completion(text=items[i].completion, finish_reason="stop",
                                                 completion_tokens=len(r.token_ids), logprobs=r.logprobs,
                                                 meta={"token_ids": r.token_ids})) for i, r in zip(rows, scored)])
    return [r for r in results if r is not None], len(todo)
