"""The verifier contract, verifier selection, and wall-clock-timed scoring.

A verifier is any object with a ``name`` and ``check(problem, text) -> Score``; it extracts the
final answer from ``text`` itself (through :mod:`.answers`) so each verifier can decide what
"the answer" means for its kind of problem. :func:`score_text` is what stages call: it picks the
verifier, runs the check under a wall-clock limit that works from any thread, and turns a
verifier exception into a failed :class:`Score` rather than a crashed run.

Why a daemon worker thread rather than ``signal.alarm`` (math-verify's own timeout): signals
only work in the main thread, and evaluation or a web server may score from worker threads.
Why not a shared ``ThreadPoolExecutor``: a runaway check cannot be killed, and pool threads are
joined at interpreter exit, so one hung sympy call would hang the program's exit too. A daemon
worker is simply abandoned when a check outlives its limit, and the next check gets a fresh one.
Each calling thread reuses its own worker: starting a thread per check cost ~2 ms, more than most
checks (measured on 2 loaded cores: 1.1 s for 512 traces). What no thread can interrupt is a C call that holds the GIL (e.g.
sympy evaluating ``9^{9^{9}}``); :mod:`.math` screens such expressions before calling sympy.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from ..config import VerifyConfig
from ..errors import ConfigError
from ..records import Problem
from .answers import as_number, extract_answer

log = logging.getLogger(__name__)

PASS_THRESHOLD = 1.0 - 1e-6  # scores at or above this count as passed
NO_GOLD = "no_gold"  # the reason of a Score for a problem with an empty gold answer


@dataclass(frozen=True, slots=True)
class Score:
    """One verifier judgement. ``reason``: correct | wrong | partial | no_answer | timeout |
    too_complex | no_gold (the problem has no gold answer: not graded, ``extracted`` still set) |
    ``error: <ExceptionType>: <message>``."""

    score: float
    passed: bool
    extracted: str | None
    formatted: bool
    reason: str


@runtime_checkable
class Verifier(Protocol):
    name: str

    def check(self, problem: Problem, text: str) -> Score: ...


def graded(score: float, extracted: str | None, formatted: bool) -> Score:
    """A :class:`Score` for a numeric grade in [0, 1] (clamped), with the standard reason."""
    score = min(1.0, max(0.0, float(score)))
    passed = score >= PASS_THRESHOLD
    reason = "correct" if passed else ("partial" if score > 0 else "wrong")
    return Score(1.0 if passed else score, passed, extracted, formatted, reason)


def no_answer(formatted: bool = False) -> Score:
    return Score(0.0, False, None, formatted, "no_answer")


class TooComplex(Exception):
    """The answer (or gold) is too large to grade safely (e.g. for sympy)."""


@dataclass(frozen=True, slots=True)
class AnswerVerifier(ABC):
    """The usual verifier shape: extract the final answer (``Answer:`` line, ``\\boxed{}``, or the
    last number when ``fallback_last_number``), then :meth:`grade` it against the gold answer.
    A verifier file then holds only what makes it different: its grade."""

    name: ClassVar[str] = ""
    fallback_last_number: bool = True

    @staticmethod
    def claims(problem: Problem) -> bool:
        """Whether ``verify.verifier: auto`` picks this verifier for ``problem`` (rows are tried in order)."""
        return False

    def check(self, problem: Problem, text: str) -> Score:
        extracted, formatted = extract_answer(text, fallback_last_number=self.fallback_last_number)
        if extracted is None:
            return no_answer(formatted)
        try:
            return graded(self.grade(problem, extracted), extracted, formatted)
        except TooComplex:
            return Score(0.0, False, extracted, formatted, "too_complex")

    @abstractmethod
    def grade(self, problem: Problem, extracted: str) -> float:
        """A grade in [0, 1] for ``extracted`` against ``problem.answer``."""


# ---------------------------------------------------------------------------
# selection

_LATEXISH = re.compile(r"[\\^{}$_]")
_EXPR_CHARS = re.compile(r"[\d\sa-z+\-*/^().,=<>\[\]|!%]+", re.IGNORECASE)
_FUNCTION_WORDS = re.compile(r"sqrt|sin|cos|tan|log|ln|exp|pi|inf|infty", re.IGNORECASE)


def looks_mathematical(answer: str) -> bool:
    """Numeric, LaTeX-ish, or a short formula (``2x+1``, ``(1, 2)``); not words like ``yes``."""
    a = answer.strip()
    if not a:
        return False
    if as_number(a) is not None or _LATEXISH.search(a):
        return True
    if len(a) > 60 or not _EXPR_CHARS.fullmatch(a) or not re.search(r"\d", a):
        return False
    return not re.search(r"[a-z]{2,}", _FUNCTION_WORDS.sub("", a), re.IGNORECASE)


@functools.lru_cache(maxsize=None)
def _class(target: str) -> type:
    from ..registry import load
    return load(target)


def pick_verifier(problem: Problem) -> str:
    """The "auto" choice, a table lookup: the verifier of the problem's task row
    (``reasondistill.tasks.TASKS``), else the first ``AUTO`` row whose class ``claims`` the
    problem (reasoning_gym for reasoning-gym problems, math for numeric or LaTeX-ish gold
    answers, exact for anything)."""
    from ..tasks import task_of
    from . import AUTO, VERIFIERS

    if (task := task_of(problem)) is not None:
        return task.verifier
    return next(name for name in AUTO if _class(VERIFIERS[name]).claims(problem))


@functools.lru_cache(maxsize=None)
def _instance(target: str, fallback_last_number: bool) -> Verifier:
    return _class(target)(fallback_last_number=fallback_last_number)


def get_verifier(name: str, problem: Problem | None = None, *, fallback_last_number: bool = True) -> Verifier:
    """The verifier called ``name``; ``"auto"`` picks one for ``problem`` (see :func:`pick_verifier`).

    Instances are stateless and shared.
    """
    from . import VERIFIERS

    if name == "auto":
        if problem is None:
            raise ConfigError("verify.verifier = 'auto' needs a problem to choose a verifier for")
        name = pick_verifier(problem)
    if ":" in name:  # a task row's own "module:Class"
        return _instance(name, fallback_last_number)
    from ..registry import check
    return _instance(VERIFIERS[check(VERIFIERS, name, "verifier (verify.verifier)")], fallback_last_number)


# ---------------------------------------------------------------------------
# timed scoring


class _Abandoned:
    """Counts checks that outlived their timeout (their threads keep running in the background)."""

    lock = threading.Lock()
    running = 0


class _Worker:
    """One daemon thread running the checks of one calling thread, one at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="reasondistill-verify", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, box, done = self.jobs.get()
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = e
            finally:
                with _Abandoned.lock:
                    done.set()
                    if box.get("abandoned"):
                        _Abandoned.running -= 1
            if box.get("abandoned"):
                return  # its caller has a new worker by now; this one ends with its late check


_workers = threading.local()


def call_with_timeout(fn: Callable[[], Score], timeout_s: float) -> Score:
    """Run ``fn`` on this thread's verifier worker; raise :class:`TimeoutError` after ``timeout_s``
    seconds (the worker is then abandoned to finish alone, and the next call starts another)."""
    worker = getattr(_workers, "worker", None) or _Worker()
    _workers.worker = worker
    box: dict[str, object] = {}
    done = threading.Event()
    worker.jobs.put((fn, box, done))
    if not done.wait(timeout_s):
        with _Abandoned.lock:
            if not done.is_set():  # it may have finished just now
                box["abandoned"] = True
                _workers.worker = None
                _Abandoned.running += 1
                if _Abandoned.running in (1, 8, 64):
                    log.warning("%d verifier check(s) exceeded the timeout and still run in the background",
                                _Abandoned.running)
                raise TimeoutError(f"check took longer than {timeout_s}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def run_check(verifier: Verifier, problem: Problem, text: str, timeout_s: float | None,
              *, fallback_last_number: bool = True, truncated: bool = False) -> Score:
    """``verifier.check`` under a wall-clock limit; timeouts and exceptions become failed Scores.

    ``truncated``: the text was cut at its token limit. Its last number is then wherever the cut
    fell, not an answer, so the last-number fallback never credits it (only an ``Answer:`` line or
    ``\\boxed{}`` written before the cut counts): the verifier is re-picked without the fallback.

    A problem without a gold answer (empty ``answer``) cannot be graded: the Score fails with reason
    ``no_gold`` and carries the extracted answer, so curation can pseudo-label such problems by
    majority vote (``curate.self_consistency``) instead of taking their traces for wrong ones."""
    if truncated and fallback_last_number:
        fallback_last_number = False
        if getattr(verifier, "fallback_last_number", False) and dataclasses.is_dataclass(verifier):
            verifier = dataclasses.replace(verifier, fallback_last_number=False)
    if not (problem.answer or "").strip():
        extracted, formatted = extract_answer(text or "", fallback_last_number=fallback_last_number)
        return Score(0.0, False, extracted, formatted, NO_GOLD)
    try:
        if timeout_s is None:
            return verifier.check(problem, text)
        return call_with_timeout(lambda: verifier.check(problem, text), timeout_s)
    except TimeoutError:
        reason = "timeout"
    except Exception as e:  # noqa: BLE001 - one bad sample must not end a run
        log.debug("verifier %s failed on problem %s", getattr(verifier, "name", verifier), problem.id,
                  exc_info=True)
        reason = f"error: {type(e).__name__}: {e}"[:300]
    extracted, formatted = extract_answer(text or "", fallback_last_number=fallback_last_number)
    return Score(0.0, False, extracted, formatted, reason)


def score_text(problem: Problem, text: str, cfg: VerifyConfig | None = None, *, truncated: bool = False) -> Score:
    """Score one model output for ``problem`` with the verifier ``cfg.verifier`` picks.

    ``truncated``: the output was cut at its token limit, so the last-number fallback is off for it
    (see :func:`run_check`). Safe to call from any thread; never raises for a bad output (see
    :class:`Score` reasons).
    """
    cfg = cfg or VerifyConfig()
    fallback = cfg.fallback_last_number and not truncated
    verifier = get_verifier(cfg.verifier, problem, fallback_last_number=fallback)
    return run_check(verifier, problem, text, cfg.timeout_s, fallback_last_number=fallback)
