"""Helpers for the robustness suite: drive the real CLI (in process through ``main(argv)`` or as
a subprocess), snapshot folders byte for byte, and collect the fault figures.

Everything goes through the command line on purpose: module paths are being reorganised, the
CLI is the contract users rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reasondistill.cli import main

REPO = Path(__file__).resolve().parents[2]


def problem_rows(n: int, start: int = 0) -> list[dict]:
    """``Problem`` records (the generate/evaluate input format) with easy gold answers."""
    return [{"id": f"p{i}", "source": "t", "prompt": f"What is {i} + 2?", "answer": str(i + 2)}
            for i in range(start, start + n)]


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_leftovers(folder: Path) -> list[str]:
    """Temp files an atomic write would leave if it were not cleaned up."""
    return [str(p) for p in folder.rglob(".*.tmp")] + [str(p) for p in folder.rglob("*.tmp") if p.is_dir()]


class CLI:
    """``main(argv)`` in this process, returning ``(exit code, stdout, stderr)``."""

    def __init__(self, capsys: pytest.CaptureFixture) -> None:
        self.capsys = capsys

    def __call__(self, *argv: object) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return rc, out, err


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture) -> CLI:
    return CLI(capsys)


def error_line(err: str) -> str:
    """The single ``reasondistill: error:`` line; fails on a traceback or on several errors."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("reasondistill: error:")]
    assert len(lines) == 1, err
    return lines[0]


def env() -> dict[str, str]:
    """Environment for a child ``python -m reasondistill``: this checkout's sources, offline."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}


def command(*argv: object) -> list[str]:
    return [sys.executable, "-m", "reasondistill", *map(str, argv)]


def run(*argv: object, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(*argv), env=env(), capture_output=True, text=True, timeout=timeout)


class Child:
    """A CLI subprocess whose stderr is collected in the background (to watch its progress)."""

    def __init__(self, *argv: object) -> None:
        self.started = time.time()
        self.proc = subprocess.Popen(command(*argv), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._err = bytearray()
        self._out = bytearray()
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf: bytearray) -> None:
        while chunk := stream.read1(4096):
            buf.extend(chunk)

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        return self._out.decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        self.wall = time.time() - self.started
        return rc


# ---------------------------------------------------------------------------
# figures


class Figures:
    """Per-case numbers from the fault tests, written to JSON and printed as a summary (``-s``)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, **row: object) -> None:
        self.rows.append(row)


@pytest.fixture(scope="session")
def figures(tmp_path_factory: pytest.TempPathFactory):
    fig = Figures()
    yield fig
    if not fig.rows:
        return
    path = Path(os.environ.get("REASONDISTILL_FIGURES") or tmp_path_factory.getbasetemp() / "robustness_figures.json")
    path.write_text(json.dumps(fig.rows, indent=1) + "\n", encoding="utf-8")
    by_test: dict[str, list[dict]] = {}
    for row in fig.rows:
        by_test.setdefault(str(row["test"]), []).append(row)
    print(f"\n\nrobustness figures ({path}):")
    for test, rows in by_test.items():
        keys = [k for k in rows[0] if k != "test"]
        print(f"  {test}: {len(rows)} case(s)")
        for row in rows:
            print("    " + ", ".join(f"{k}={row.get(k)}" for k in keys))
