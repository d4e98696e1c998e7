"""Scoring against a real server: ``transformers serve`` (5.x) accepts ``echo`` and ``logprobs`` on
``/v1/completions`` but ignores both (its ``UNUSED_LEGACY_COMPLETION_FIELDS``; the prompt must be a
string, token ids are refused), so it cannot be a served teacher. The ``openai`` backend must say
so at once instead of retrying or training on nothing. Slow (``-m slow``): the server takes ~20 s
to start on 2 shared cores."""

from __future__ import annotations

import time

import pytest

from reasondistill.backends.base import ScoreItem
from reasondistill.backends.openai import OpenAIBackend
from reasondistill.errors import ConfigError
from tests.transformers_serve import TransformersServe, serve_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(serve_available() is not None, reason=str(serve_available()))]


def test_transformers_serve_cannot_score_and_is_refused_at_once(tiny_model_dir, tmp_path):
    from reasondistill import models

    with TransformersServe(tiny_model_dir, tmp_path / "serve.log") as server:
        backend = OpenAIBackend(str(tiny_model_dir), base_url=server.base_url, endpoint="completions",
                                max_retries=3, backoff_s=1.0)
        backend.use_tokenizer(models.load_tokenizer(str(tiny_model_dir)))
        start = time.monotonic()
        with pytest.raises(ConfigError, match="without logprobs.*transformers serve ignores both"):
            backend.score([ScoreItem(({"role": "user", "content": "What is 2 + 3?"},), "5")], 4)
        assert time.monotonic() - start < 60  # no retries with backoff: one answer is enough to know
