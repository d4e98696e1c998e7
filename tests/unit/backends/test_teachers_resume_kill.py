"""A generation process killed with SIGKILL mid-run resumes to the same dataset."""

import os
import signal
import subprocess
import sys
import time

import pytest

from reasondistill import io
from reasondistill.records import Problem, Trace


def problems(path, n):
    io.write_jsonl(path, [Problem(f"p{i}", "t", f"What is {i} + 2?", str(i + 2)) for i in range(n)])
    return path


def cli(out, probs, cache, extra):
    return [sys.executable, "-m", "reasondistill", "generate", "--problems", str(probs), "--out", str(out),
            f"generate.cache_dir={cache}", "generate.rationalize=false", *extra]


def cache_lines(cache):
    files = list(cache.glob("*.jsonl")) if cache.exists() else []
    return sum(len(f.read_text().splitlines()) - 1 for f in files)


@pytest.mark.parametrize("backend", ["dummy", "transformers"])
def test_sigkill_mid_run_then_resume_gives_same_dataset(tmp_path, backend, tiny_model_dir):
    if backend == "dummy":
        probs = problems(tmp_path / "p.jsonl", 40)
        extra = ["teacher.backend=dummy", "teacher.options={accuracy: 0.5, delay_s: 0.03}", "generate.samples=4"]
        target = 160
    else:
        probs = problems(tmp_path / "p.jsonl", 24)
        extra = ["teacher.backend=transformers", f"teacher.model={tiny_model_dir}", "teacher.batch_size=4",
                 "teacher.dtype=float32", "generate.samples=2", "generate.max_new_tokens=24",
                 "generate.temperature=1.0"]
        target = 48
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cache = tmp_path / "cache"
    proc = subprocess.Popen(cli(tmp_path / "killed", probs, cache, extra), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while cache_lines(cache) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "generation finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = cache_lines(cache)
    assert 8 <= partial < target
    assert not (tmp_path / "killed" / "traces.jsonl").exists()  # no half-written output

    done = subprocess.run(cli(tmp_path / "killed", probs, cache, extra), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f'"teacher_calls": {target - partial}' in done.stdout  # only the missing samples were paid for

    fresh = subprocess.run(cli(tmp_path / "fresh", probs, tmp_path / "cache2", extra), env=env,
                           capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    resumed = io.read_records(tmp_path / "killed" / "traces.jsonl", Trace)
    clean = io.read_records(tmp_path / "fresh" / "traces.jsonl", Trace)
    assert len(resumed) == target and len({t.id for t in resumed}) == target
    assert [(t.id, t.raw) for t in resumed] == [(t.id, t.raw) for t in clean]
