"""``transformers serve`` (transformers' own OpenAI-compatible server) on 127.0.0.1, for the
real-server tests and the concurrency benchmark: started on a free port with the hub off,
waited for (bounded), stopped after."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def serve_available() -> str | None:
    """``None`` when ``transformers serve`` can run here, else why not."""
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError as e:  # pragma: no cover
        return f"transformers: {e}"
    if not is_serve_available():
        return "transformers serve needs its serving extra: pip install -e '.[serve]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TransformersServe:
    """``with TransformersServe(model_dir, log) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, model: str | Path, log_path: str | Path, *, startup_s: float = 180.0,
                 extra_args: list[str] | None = None, threads: int | None = None) -> None:
        self.model = str(model)
        self.log_path = Path(log_path)
        self.startup_s = startup_s
        self.extra_args = list(extra_args or [])
        self.threads = threads
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def start(self) -> TransformersServe:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFORMERS_VERBOSITY": "error"}
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model,
               "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--dtype", "float32",
               "--log-level", "error", *self.extra_args]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve not up after {self.startup_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and nothing else
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> TransformersServe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
