"""Run a short Python program in a sandbox: program-of-thought teachers write programs whose
printed output is the answer, and a program written by a model must not be able to hurt the
machine, hang the stage or reach the network.

Each program runs in its own process, ``python -I -S -B`` (isolated mode: no user site, no
``PYTHON*`` variables, no ``site``; no bytecode written), with:

- resource limits set in ``preexec_fn`` before the interpreter starts: ``RLIMIT_CPU`` (CPU
  seconds: SIGXCPU, then SIGKILL a second later), ``RLIMIT_AS`` (address space: a 10 GB
  allocation is a ``MemoryError``), ``RLIMIT_FSIZE`` (the largest file it may write, its stdout
  included; the write fails, as Python ignores SIGXFSZ), ``RLIMIT_NPROC`` = 0 (no new processes
  or threads; the kernel does not apply it to root, see below) and ``RLIMIT_CORE`` = 0;
- a wall-clock timeout, after which its whole process group (its own session) is killed; the
  group is killed after a normal exit too, so nothing it started outlives it;
- a throw-away working directory (``HOME`` and ``TMPDIR`` point there too), removed afterwards;
- an audit hook (``sys.addaudithook``), installed by a bootstrap before the program's first
  line runs, that ends the process at once (exit status :data:`BLOCKED_EXIT`, a ``sandbox:
  blocked ...`` line on stderr) when the program creates a socket, starts a process
  (``os.fork``, ``os.exec*``, ``os.posix_spawn``, ``os.system``, ``subprocess``), signals
  another process, opens a file for writing outside its directory, removes, renames or
  changes anything outside it, or uses ``ctypes``. A refusal cannot be caught by the program;
- no network: when running as root and ``unshare -n`` works, the program runs in a new,
  empty network namespace (not even loopback is up) as well as under the hook; otherwise the
  hook alone refuses socket creation. :func:`isolation` says which applies on this machine;
  every :class:`Result` records it.

As root, ``RLIMIT_NPROC`` is not enforced by the kernel, so there the hook is what stops a
fork bomb (and the process-group kill cleans up). An audit hook is a guard rail against the
mistakes and naive escapes of generated programs, not a security boundary against an adversary
(CPython documents that hooks can be bypassed by code that works at it); run untrusted code at
scale inside a container or VM as well.

Programs may use the standard library only (``-S``: no site-packages).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .config import check_choice
from .errors import ConfigError

BLOCKED_EXIT = 86  # exit status of a program the audit hook stopped
PROGRAM = "main.py"
STDOUT, STDERR = "stdout.txt", "stderr.txt"
TAIL = 2000  # characters of stderr kept in a Result

# Installed before the program runs; argv: [root, program]. Everything it needs is bound in the
# closure so the program cannot reach it through globals (it runs in a fresh namespace).
BOOTSTRAP = r"""
import sys, os

def _install(root, blocked_exit):
    realpath, join, getcwd, sep = os.path.realpath, os.path.join, os.getcwd, os.sep
    write, exit_now, fsdecode = os.write, os._exit, os.fsdecode
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    root = realpath(root)
    process = frozenset(("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                         "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn",
                         "os.startfile"))
    paths = frozenset(("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                       "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo",
                       "os.mknod", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.move",
                       "shutil.copyfile", "shutil.copymode", "shutil.copystat"))
    introspection = frozenset(("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook"))

    def deny(what):
        write(2, ("sandbox: blocked " + what + "\n").encode("utf-8", "replace"))
        exit_now(blocked_exit)

    def inside(path):
        if isinstance(path, int):
            return True  # an open descriptor: opening it was checked
        try:
            full = realpath(join(getcwd(), fsdecode(path)))
        except Exception:
            return False
        return full == root or full.startswith(root + sep)

    def hook(event, args):
        if event.startswith("socket."):
            deny(event)
        elif event in process or event.startswith("ctypes.") or event in introspection:
            deny(event)
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if isinstance(flags, int):
                writes = bool(flags & write_flags)
            else:
                writes = isinstance(mode, str) and any(c in mode for c in "wax+")
            if writes and path is not None and not inside(path):
                deny("open for writing outside the sandbox: " + repr(path))
        elif event in paths:
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)) and not inside(a):
                    deny(event + " outside the sandbox: " + repr(a))

    sys.addaudithook(hook)

_root, _program = sys.argv[1], sys.argv[2]
with open(_program, encoding="utf-8") as _fh:
    _code = compile(_fh.read(), _program, "exec")
sys.argv = [_program]
_install(_root, %d)
del _install, _root, _fh
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__, "__file__": _program})
""" % BLOCKED_EXIT


@dataclass
class SandboxConfig:
    """``generate.sandbox``: limits for running program-of-thought programs (``generate.prompt.style:
    pot``); see ``reasondistill.sandbox``."""

    timeout_s: float = 10.0  # wall clock per program
    cpu_s: int = 5  # CPU seconds per program
    memory_mb: int = 512  # address-space limit
    output_bytes: int = 65536  # largest file (stdout included) a program may write
    # auto: a network namespace (unshare -n) where possible, plus the audit hook | hook: the audit hook only
    network: str = "auto"
    workers: int = 4  # programs run at once

    def __post_init__(self) -> None:
        check_choice("generate.sandbox.network", self.network, ("auto", "hook"))
        if self.timeout_s <= 0 or self.cpu_s < 1 or self.memory_mb < 64 or self.output_bytes < 1 or self.workers < 1:
            raise ConfigError("generate.sandbox: timeout_s > 0, cpu_s >= 1, memory_mb >= 64, output_bytes >= 1 "
                              "and workers >= 1")


@dataclass(frozen=True)
class Limits:
    """What a program may use (see the module docstring)."""

    timeout_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    output_bytes: int = 65536
    network: str = "auto"  # auto: a network namespace where possible, plus the hook | hook: the hook only


@dataclass(frozen=True)
class Result:
    """How a program ended. ``reason``: ``ok`` | ``error`` (it raised or exited non-zero) |
    ``blocked`` (the audit hook stopped it; ``detail`` says what) | ``timeout`` | ``cpu_limit`` |
    ``memory_limit`` | ``output_limit`` | ``killed`` (another signal) | ``sandbox_error``."""

    ok: bool
    reason: str
    stdout: str
    stderr: str
    returncode: int | None
    wall_s: float
    isolation: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "detail": self.detail, "returncode": self.returncode,
                "wall_s": round(self.wall_s, 3), "isolation": self.isolation, "stderr": self.stderr}


@functools.lru_cache(maxsize=1)
def _unshare() -> str | None:
    """The ``unshare`` binary when this process may create a network namespace with it, else None."""
    exe = shutil.which("unshare")
    if exe is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        done = subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if done.returncode == 0 else None


def isolation(network: str = "auto") -> str:
    """How the network is cut off for ``network`` on this machine: ``"unshare -n + audit hook"`` or
    ``"audit hook"``."""
    return "unshare -n + audit hook" if network == "auto" and _unshare() else "audit hook"


def _limit_resources(limits: Limits):
    """The ``preexec_fn``: only ``setrlimit`` calls on values computed before the fork (nothing is
    imported or allocated in the child beyond small ints)."""
    cpu, mem, fsize = int(limits.cpu_s), int(limits.memory_mb) << 20, int(limits.output_bytes)
    calls = ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (mem, mem)),
             (resource.RLIMIT_FSIZE, (fsize, fsize)), (resource.RLIMIT_NPROC, (0, 0)),
             (resource.RLIMIT_CORE, (0, 0)))

    def preexec() -> None:
        for which, value in calls:
            resource.setrlimit(which, value)

    return preexec


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _classify(returncode: int | None, timed_out: bool, stderr: str) -> tuple[str, str]:
    if timed_out:
        return "timeout", ""
    if returncode == 0:
        return "ok", ""
    if returncode == BLOCKED_EXIT:
        line = next((ln for ln in reversed(stderr.splitlines()) if ln.startswith("sandbox: blocked")), "")
        return "blocked", line.removeprefix("sandbox: blocked ").strip()
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in {s.value for s in signal.Signals} else str(sig)
        if sig == signal.SIGXCPU:
            return "cpu_limit", name
        if sig == signal.SIGXFSZ:
            return "output_limit", name
        return "killed", name  # SIGKILL: the CPU hard limit, or the kernel's OOM killer
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "MemoryError" in last:
        return "memory_limit", last
    if "[Errno 27]" in last:  # EFBIG: Python ignores SIGXFSZ, so RLIMIT_FSIZE shows as a failed write
        return "output_limit", last
    return "error", last


def run_python(code: str, limits: Limits = Limits()) -> Result:
    """Run ``code`` as a program in the sandbox; never raises for anything the program does."""
    how = isolation(limits.network)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="reasondistill-sandbox-"))
    try:
        (root / PROGRAM).write_text(code, encoding="utf-8")
        argv = [sys.executable, "-I", "-S", "-B", "-c", BOOTSTRAP, str(root), PROGRAM]
        if how.startswith("unshare"):
            argv = [_unshare(), "-n", "--", *argv]
        env = {"PATH": os.defpath, "HOME": str(root), "TMPDIR": str(root), "LANG": "C.UTF-8"}
        timed_out = False
        with open(root / STDOUT, "wb") as out, open(root / STDERR, "wb") as err:
            try:
                proc = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        preexec_fn=_limit_resources(limits), start_new_session=True,
                                        close_fds=True)
            except OSError as e:
                return Result(False, "sandbox_error", "", "", None, time.monotonic() - started, how,
                              f"{type(e).__name__}: {e}")
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)
                proc.wait()
        stdout = _read(root / STDOUT, limits.output_bytes)
        stderr = _read(root / STDERR, 1 << 20)[-TAIL:]
        reason, detail = _classify(proc.returncode, timed_out, stderr)
        return Result(reason == "ok", reason, stdout, stderr, proc.returncode, time.monotonic() - started, how,
                      detail)
    finally:
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["BLOCKED_EXIT", "Limits", "Result", "isolation", "run_python"]
