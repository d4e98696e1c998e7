"""``transformers serve`` (transformers' own OpenAI-compatible server) on 127.0.0.1, for the
real-server tests and the concurrency benchmark: started on a free port with the hub off,
waited for (bounded), stopped after."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.loopback import LoopbackServer


def serve_available() -> str | None:
    """``None`` when ``transformers serve`` can run here, else why not."""
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError as e:  # pragma: no cover
        return f"transformers: {e}"
    if not is_serve_available():
        return "transformers serve needs its serving extra: pip install -e '.[serve]'"
    return None


class TransformersServe(LoopbackServer):
    """``with TransformersServe(model_dir, log) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    name = "transformers serve"
    health_path = "/health"

    def __init__(self, model: str | Path, log_path: str | Path, *, startup_s: float = 180.0,
                 extra_args: list[str] | None = None, threads: int | None = None) -> None:
        super().__init__(log_path, startup_s=startup_s)
        self.model = str(model)
        self.extra_args = list(extra_args or [])
        self.threads = threads

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFORMERS_VERBOSITY": "error"}
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model,
                "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--dtype", "float32",
                "--log-level", "error", *self.extra_args]
