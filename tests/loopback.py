"""A real server process on 127.0.0.1 for the tests and benchmarks (``transformers serve``,
``python -m llama_cpp.server``): started in its own session on a free port, waited for until its
health URL answers (bounded in time), and stopped with its whole process group."""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer(abc.ABC):
    """Subclasses give ``name``, ``command()``, ``health_path`` and optionally ``environment()``;
    ``with Server(...) as srv: srv.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    name = "server"
    health_path = "/health"

    def __init__(self, log_path: str | Path, *, startup_s: float = 180.0) -> None:
        self.log_path = Path(log_path)
        self.startup_s = startup_s
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The server's argv."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def start(self) -> LoopbackServer:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.environment(), start_new_session=True)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.health_path}", timeout=2) as r:
                    if r.status == 200:
                        return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} not up after {self.startup_s:.0f} s:\n{self.log_tail()}")

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
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
