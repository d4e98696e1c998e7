"""One teacher's share of the generate stage: the first pass, then each mode's follow-up pass
(the steps are listed in ``base.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..backends.base import Completion, Request
from ..backends.sampling import CallCounts
from ..records import Trace
from .base import Drawn, Mode, Pass, Sampling, to_trace


@dataclass
class TeacherShare:
    """One teacher's traces and what they cost (a row of the manifest's ``teachers``)."""

    traces: list[Trace]
    counts: CallCounts
    n_problems: int
    n_hinted: int
    solved: int
    vocab: int | None
    identity: str

    def summary(self) -> dict[str, Any]:
        return {"n_problems": self.n_problems, "n_traces": len(self.traces), "n_hinted": self.n_hinted,
                "problems_solved_unhinted": self.solved, "teacher_calls": self.counts.made,
                "cached_teacher_calls": self.counts.cached, "teacher_identity": self.identity,
                "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in self.traces)}


def _finish(modes: list[Mode], comps: list[Completion]) -> list[Completion]:
    for mode in modes:
        comps = mode.finish(comps)
    return comps


def first_requests(ctx: Sampling, modes: list[Mode]) -> list[Request]:
    """Each problem ``ctx.samples`` times: the first mode's hint, else the style's plain prompt."""
    style = next(m for m in modes if m.style)
    reqs = []
    for p in ctx.problems:
        hint = next((h for m in modes if (h := m.hint(p)) is not None), None)
        text = style.prompt(p, ctx.cfg.prompt) if hint is None else hint
        reqs += [ctx.request(p, text, i, hinted=hint is not None) for i in range(ctx.samples)]
    return reqs


def _follow(ctx: Sampling, modes: list[Mode], drawn: Drawn, step: Pass) -> None:
    comps, counts = ctx.draw(step.requests, step.desc)
    drawn.counts.add(counts)
    traces = [to_trace(r, c, ctx.backend, ctx.name) for r, c in zip(step.requests, _finish(modes, comps))]
    if step.annotate is not None:
        traces = [step.annotate(t) for t in traces]
    if step.rationalized:
        drawn.n_hinted += len(step.requests)
    drawn.traces += traces
    drawn.next_idx += step.width


def sample(ctx: Sampling, modes: list[Mode]) -> TeacherShare:
    """Every pass for one teacher, in order; its traces and counts."""
    reqs = first_requests(ctx, modes)
    comps, counts = ctx.draw(reqs, f"generate ({ctx.label})")
    traces = [to_trace(r, c, ctx.backend, ctx.name) for r, c in zip(reqs, _finish(modes, comps))]
    for mode in modes:
        traces = [mode.annotate(t) for t in traces]
    passed = ctx.passed(traces)
    drawn = Drawn(traces, passed, {t.problem_id for t in traces if t.id in passed}, ctx.samples, counts)
    for mode in modes:
        if (step := mode.follow_up(ctx, drawn)) is not None:
            _follow(ctx, modes, drawn, step)
    solved = {t.problem_id for t in drawn.traces if t.id in drawn.passed and not t.hinted}
    return TeacherShare(drawn.traces, drawn.counts, len(ctx.problems), drawn.n_hinted, len(solved),
                        ctx.backend.vocab_size, ctx.identity)
