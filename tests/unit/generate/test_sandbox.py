"""The program-of-thought sandbox stops what a generated program must not do, and says why."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

import pytest

from reasondistill.sandbox import BLOCKED_EXIT, Limits, isolation, run_python

FAST = Limits(timeout_s=3.0, cpu_s=1, memory_mb=256, output_bytes=4096)
NETWORKS = ["auto", "hook"]  # auto: a network namespace where possible + the hook; hook: the audit hook alone


def limits(network: str) -> Limits:
    return Limits(**{**FAST.__dict__, "network": network})


def test_a_plain_program_prints_its_answer():
    r = run_python("import math\nprint(math.comb(5, 2) + sum(range(4)))", FAST)
    assert r.ok and r.reason == "ok" and r.stdout == "16\n" and r.returncode == 0
    assert r.isolation == isolation("auto")


def test_it_may_write_inside_its_own_folder():
    r = run_python("import os, tempfile\nopen('scratch.txt', 'w').write('hi')\n"
                   "with tempfile.NamedTemporaryFile('w') as f: f.write('x')\n"
                   "os.mkdir('sub'); os.rename('scratch.txt', 'sub/s.txt'); print(open('sub/s.txt').read())", FAST)
    assert r.ok and r.stdout == "hi\n", r.stderr


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records whether anyone connected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    connected = threading.Event()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            connected.set()
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1], connected
    stop.set()
    thread.join(2)
    srv.close()


@pytest.mark.parametrize("network", NETWORKS)
def test_no_network(network, listener):
    port, connected = listener
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
    r = run_python(code, limits(network))
    assert not r.ok and r.reason == "blocked" and "socket" in r.detail and r.returncode == BLOCKED_EXIT
    assert r.stdout == "" and not connected.is_set()
    # the program cannot catch the refusal and carry on
    r = run_python("try:\n    import socket; socket.socket()\nexcept BaseException:\n    pass\nprint(5)", limits(network))
    assert r.reason == "blocked" and r.stdout == ""


@pytest.mark.skipif(isolation("auto") == "audit hook", reason="no network namespace here (not root, or no unshare)")
def test_the_network_namespace_alone_has_no_route(listener):
    """Below the hook: the namespace itself has no network (checked with a plain interpreter)."""
    import subprocess
    import sys

    from reasondistill.sandbox import _unshare

    port, connected = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
    done = subprocess.run([_unshare(), "-n", "--", sys.executable, "-I", "-S", "-c", code], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode != 0 and "OSError" in done.stderr and not connected.is_set()


@pytest.mark.parametrize("target", ["OUTSIDE", "../escape.txt"])
def test_no_writing_outside_its_folder(target, tmp_path):
    path = str(tmp_path / "escape.txt") if target == "OUTSIDE" else target
    r = run_python(f"open({path!r}, 'w').write('x')\nprint('wrote')", FAST)
    assert r.reason == "blocked" and "open for writing" in r.detail and r.stdout == ""
    assert not (tmp_path / "escape.txt").exists()
    r = run_python(f"import os\nos.remove({str(tmp_path)!r})", FAST)
    assert r.reason == "blocked" and "os.remove" in r.detail and tmp_path.exists()


def test_no_fork_bomb():
    r = run_python("import os\nwhile True:\n    os.fork()", FAST)
    assert r.reason == "blocked" and r.detail == "os.fork"
    r = run_python("import subprocess\nsubprocess.run(['true'])", FAST)
    assert r.reason == "blocked" and r.detail == "subprocess.Popen"


def test_no_ctypes_escape():
    r = run_python("import ctypes\nctypes.CDLL(None).system(b'echo hi')", FAST)
    assert r.reason == "blocked" and r.detail.startswith("ctypes")


def test_ten_gigabytes_is_a_memory_error():
    r = run_python("x = bytearray(10 * 1024 ** 3)\nprint(len(x))", FAST)
    assert r.reason == "memory_limit" and "MemoryError" in r.detail and r.stdout == ""


def test_an_endless_loop_hits_the_cpu_limit():
    # a generous wall clock, so that on a busy machine the CPU limit is still what stops it
    r = run_python("while True:\n    pass", Limits(timeout_s=60.0, cpu_s=1))
    assert r.reason in ("cpu_limit", "killed") and r.wall_s < 60


def test_a_sleeper_hits_the_wall_clock():
    r = run_python("import time\nprint('start', flush=True)\ntime.sleep(60)", Limits(timeout_s=1.0))
    assert r.reason == "timeout" and r.stdout == "start\n" and r.wall_s < 5


def test_endless_output_is_capped():
    r = run_python("while True:\n    print('x' * 1000)", FAST)
    assert r.reason == "output_limit" and len(r.stdout) <= FAST.output_bytes


def test_errors_and_exit_codes():
    r = run_python("1 / 0", FAST)
    assert r.reason == "error" and "ZeroDivisionError" in r.detail and "ZeroDivisionError" in r.stderr
    r = run_python("import sys\nsys.exit(3)", FAST)
    assert r.reason == "error" and r.returncode == 3


def test_nothing_is_left_behind():
    tmp = tempfile.gettempdir()
    before = {p for p in os.listdir(tmp) if p.startswith("reasondistill-sandbox-")}
    run_python("open('x', 'w').write('y')", FAST)
    after = {p for p in os.listdir(tmp) if p.startswith("reasondistill-sandbox-")}
    assert after <= before
