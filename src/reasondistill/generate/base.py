"""The generation-mode contract: what a mode is given and what it may change.

A mode (``MODES`` in ``__init__``) is one class with a few optional hooks, so chain of thought,
program of thought, STaR, SSB hints and tailored learning each live in their own file and the
stage (``run.py``) only dispatches. Every teacher's share of the stage goes through the same
steps (``passes.py``):

1. the **first pass**: each problem asked ``samples`` times, with the plain prompt of the style
   mode (``generate.prompt.style``) or a mode's :meth:`Mode.hint` in its place;
2. :meth:`Mode.finish` on every pass's completions (pot runs the programs);
3. :meth:`Mode.annotate` on the first pass's traces;
4. the **follow-up passes**, one per mode that returns a :class:`Pass` from :meth:`Mode.follow_up`,
   in table order, each taking the next free sample indices.

Requests, and so the sample-cache keys, depend only on the prompt text, sample index, ``hinted``
and the style: a mode changes them only through its prompts. Modes are built once per stage
(:meth:`Mode.from_config`) and may keep counts across teachers for their manifest block
(:meth:`Mode.outputs`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..backends.base import Backend, Completion, Request, SamplingParams
from ..backends.cache import SampleCache
from ..backends.sampling import CallCounts, draw
from ..config import GenerateConfig, PromptConfig, VerifyConfig
from ..layout import Layout
from ..prompts import ANSWER_PREFIX
from ..records import Problem, Trace
from .student_answers import StudentAnswers


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          stop=tuple(cfg.stop), seed=cfg.seed, top_logprobs=cfg.top_logprobs)


def to_trace(req: Request, comp: Completion, teacher: Backend, name: str | None = None) -> Trace:
    """The trace of one completion; ``name`` (a named teacher's) replaces the backend's name."""
    from ..grading.answers import extract_answer

    answer, _ = extract_answer(comp.text, fallback_last_number=False)
    reasoning = comp.text
    cut = comp.text.rfind(ANSWER_PREFIX)
    if cut >= 0:
        reasoning = comp.text[:cut].rstrip()
    kind = "h" if req.hinted else "s"
    name = name or teacher.name
    return Trace(id=f"{req.problem.id}/{name}/{kind}{req.sample_idx}", problem_id=req.problem.id,
                 teacher=name, sample_idx=req.sample_idx, reasoning=reasoning,
                 answer_text=answer or "", raw=comp.text, finish_reason=comp.finish_reason,
                 usage={"prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens},
                 logprobs=comp.logprobs, hinted=req.hinted, style=req.style, meta=dict(comp.meta))


@dataclass
class Sampling:
    """What a mode gets for one teacher: its problems, prompts, backend and cache."""

    cfg: GenerateConfig
    verify: VerifyConfig  # how traces are scored (STaR and tailored need to know which passed)
    backend: Backend
    problems: list[Problem]  # the ones this teacher's route admits
    all_problems: list[Problem]  # every training problem (verification looks problems up here)
    prefix: list[dict[str, str]]  # few-shot turns before each question
    cache: SampleCache
    identity: str  # the teacher's cache identity
    samples: int  # first-pass samples per problem
    name: str | None = None  # a named teacher's name (a teacher list)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.backend.name})" if self.name else self.backend.name

    @property
    def style(self) -> str:
        return self.cfg.prompt.style

    def ask(self, content: str) -> tuple[dict[str, str], ...]:
        """The conversation for one prompt text: the few-shot turns, then the question."""
        return tuple(self.prefix + [{"role": "user", "content": content}])

    def request(self, problem: Problem, content: str, sample_idx: int, *, hinted: bool) -> Request:
        return Request(problem, self.ask(content), sample_idx, hinted=hinted, style=self.style)

    def draw(self, requests: list[Request], desc: str) -> tuple[list[Completion], CallCounts]:
        return draw(self.backend, requests, sampling_params(self.cfg), self.cache, desc=desc,
                    identity=self.identity)

    @functools.cached_property
    def by_id(self) -> dict[str, Problem]:
        return {p.id: p for p in self.all_problems}

    def passed(self, traces: list[Trace]) -> set[str]:
        """The ids of ``traces`` that verify against their problem's gold answer."""
        from ..grading import score_text

        return {t.id for t in traces if score_text(self.by_id[t.problem_id], t.raw, self.verify).passed}


@dataclass
class Drawn:
    """So far in one teacher's share: its traces, which of the first pass's passed and which problems
    they solved, the next free sample index, and the calls made."""

    traces: list[Trace]
    passed: set[str]  # ids of first-pass traces that verify
    solved: set[str]  # problems with a passing first-pass trace
    next_idx: int
    counts: CallCounts = field(default_factory=CallCounts)
    n_hinted: int = 0  # STaR rationalizations (the manifest's n_hinted)


@dataclass
class Pass:
    """A follow-up round a mode asks for: its requests and how to mark their traces.

    ``width``: the sample indices it reserves per problem (taken even when no problem needs it, so
    later passes keep their indices); ``rationalized``: counted in the manifest's ``n_hinted``."""

    desc: str
    requests: list[Request]
    width: int
    annotate: Callable[[Trace], Trace] | None = None
    rationalized: bool = False


class Mode:
    """A generation mode: every hook is optional; a mode overrides only what it changes."""

    name: ClassVar[str] = ""
    switch: ClassVar[str] = ""  # the override that turns it on, when not ``generate.modes=[NAME]``
    style: ClassVar[bool] = False  # a prompt style (``generate.prompt.style``): writes the plain prompt
    probes: ClassVar[bool] = False  # reads the student's answers on the training problems (probe stage)

    @classmethod
    def from_config(cls, cfg: GenerateConfig) -> Mode | None:
        """This mode for the recipe, or None when it is off; by default on when ``generate.modes``
        names it (built-in modes read their own switches)."""
        return cls() if cls.name in cfg.modes else None

    def start(self, problems: list[Problem], answers: dict[str, StudentAnswers]) -> None:
        """Once per stage, before any teacher samples: ``answers`` holds the probe's samples when a
        mode ``probes``, else it is empty."""

    def prompt(self, problem: Problem, cfg: PromptConfig) -> str:
        """The plain prompt text (style modes only)."""
        raise NotImplementedError(f"generation mode {self.name!r} is not a prompt style")

    def hint(self, problem: Problem) -> str | None:
        """A hinted prompt that replaces the plain one in the first pass (its traces are ``hinted``)."""
        return None

    def annotate(self, trace: Trace) -> Trace:
        """Mark a first-pass trace (e.g. with the hint it was given)."""
        return trace

    def finish(self, comps: list[Completion]) -> list[Completion]:
        """Post-process every pass's completions before they become traces."""
        return comps

    def follow_up(self, ctx: Sampling, drawn: Drawn) -> Pass | None:
        """A round after the first, given what this teacher has drawn so far."""
        return None

    def settled(self, trace: Trace) -> bool:
        """Whether a failed trace is a finished result of this mode, not a request to retry."""
        return False

    def outputs(self, traces: list[Trace]) -> dict[str, Any] | None:
        """This mode's block of the manifest's outputs (under its name), given every trace."""
        return None

    def write(self, layout: Layout) -> list[Path]:
        """Files this mode writes beside the traces, after every teacher has sampled."""
        return []
