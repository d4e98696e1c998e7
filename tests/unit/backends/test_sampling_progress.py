"""Without a terminal (a log file, CI), the sampling loop reports progress as timed log lines,
so a long evaluation or generation never looks hung."""

import logging

from reasondistill.backends import sampling
from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.dummy import DummyBackend
from reasondistill.records import Problem


def test_progress_lines_without_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(sampling.sys.stderr, "isatty", lambda: False, raising=False)
    clock = iter(range(0, 10_000, 10))  # each look at the clock: 10 s later
    monkeypatch.setattr(sampling.time, "monotonic", lambda: next(clock))
    problems = [Problem(f"p{i}", "t", f"{i}+1?", str(i + 1)) for i in range(40)]
    reqs = [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in problems]
    with caplog.at_level(logging.INFO, logger="reasondistill.backends.sampling"):
        out, counts = sampling.draw(DummyBackend(accuracy=1.0), reqs, SamplingParams(), None, desc="eval m")
    assert len(out) == 40 and counts.made == 40
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("eval m:")]
    # batches of 16: 16, 32, 40; a line every 15 s of (fake) time, and always the last one
    assert lines and lines[-1].startswith("eval m: 40/40 samples")
    assert any(line.startswith("eval m: 32/40") for line in lines)


def test_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.setattr(sampling.sys.stderr, "isatty", lambda: True, raising=False)
    bar = sampling.progress(3, "x")
    assert not isinstance(bar, sampling._LogProgress)
    bar.close()
