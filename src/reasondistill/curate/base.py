"""The curation policy contract: keep/drop decisions with a reason, per trace or per problem.

A policy is a small class with a ``name``, a ``from_config(cfg)`` classmethod that returns an
instance or None (the recipe switched it off), and one of:

- ``keep(problem, trace, verdict)`` (a per-trace policy) returning ``(True, "")`` or
  ``(False, reason)``; a bare bool is accepted too (the reason is then the policy's name);
- ``select(problem, traces, verdicts)`` (a per-problem-group policy) returning
  ``(kept, dropped)``: the traces it keeps, in order, and ``[(trace, reason), ...]``. Group
  policies see a problem's surviving traces best first (unhinted, then shorter, then file
  order); their ``scope`` says whether they act on the correct traces (``"train"``), the
  negatives, or both.

Per-trace policies run first in ``POLICIES`` order, and the first refusal wins, like
datatrove's filters writing exclusions with their reason; group policies then run in table
order on what is left of each problem.

A policy that needs more than one trace or problem at a time has any of these optional hooks:

- ``prepare(ctx)``: called once per run, in table order, before any ``keep``/``select``, with a
  :class:`CurateContext` (every problem, trace and verdict, pass rates, the recipe and the
  layout). It may note per-trace or per-problem fields (``ctx.trace_notes``: into the example's
  ``meta`` or the rejected row; ``ctx.problem_notes``: into ``pass_rates.jsonl``), and may grade
  traces the verifier could not (``no_gold`` verdicts) by replacing them in ``ctx.verdicts``;
- ``report()``: a dict for the manifest (``outputs.policy_reports[name]``);
- ``keeps_problem(problem_id)``: a problem-level selection; when any policy has one, the stage
  writes the problems every such policy keeps to ``selected_problems.jsonl`` (GRPO prompts);
- a classmethod ``depends(cfg, recipe, layout)``: ``{"inputs": [paths], "config": {...}}`` that
  the stage's up-to-date check must cover when the policy is on (a file it reads, a model's
  identity); ``{}`` when it is off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..config import CurateConfig
from ..layout import Layout
from ..records import Problem, Trace, Verdict
from ..grading.base import NO_GOLD

INCORRECT = "incorrect"  # the reason that routes a trace to negatives.jsonl rather than rejected.jsonl
TRAIN, NEGATIVES = "train", "negatives"  # group-policy scopes


@runtime_checkable
class Policy(Protocol):
    name: str

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str] | bool: ...


@runtime_checkable
class GroupPolicy(Protocol):
    name: str
    scope: tuple[str, ...]

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]: ...


def trace_length(trace: Trace, unit: str) -> int:
    """A trace's length in ``unit``: ``chars`` of the stripped text, or ``tokens``, the teacher's
    ``usage.completion_tokens`` (its whitespace word count where the backend recorded none)."""
    if unit == "chars":
        return len(trace.raw.strip())
    return int(trace.usage.get("completion_tokens") or 0) or len(trace.raw.split())


@dataclass
class CurateContext:
    """Everything a policy's ``prepare`` may look at (see the module docstring)."""

    recipe: Any
    layout: Layout
    problems: dict[str, Problem]
    traces: list[Trace]
    verdicts: dict[str, Verdict]
    trace_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    problem_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))

    def __post_init__(self) -> None:
        self.by_problem: dict[str, list[Trace]] = defaultdict(list)
        for t in self.traces:
            self.by_problem[t.problem_id].append(t)

    def pass_rate_row(self, problem_id: str, teacher: str | None = None) -> dict[str, Any]:
        """The teacher's pass rate on a problem over its UNHINTED samples (hinted STaR traces saw the
        answer), of one ``teacher`` or all; ungraded (``no_gold``) samples do not count, so a problem
        nobody could grade has ``pass_rate: None``."""
        graded = [self.verdicts[t.id] for t in self.by_problem.get(problem_id, [])
                  if not t.hinted and (teacher is None or t.teacher == teacher)
                  and self.verdicts[t.id].reason != NO_GOLD]
        n, n_correct = len(graded), sum(v.passed for v in graded)
        rate = n_correct / n if n else None
        return {"problem_id": problem_id, "n": n, "n_correct": n_correct, "pass_rate": rate,
                "difficulty": None if rate is None else 1.0 - rate}

    def pass_rate(self, problem_id: str, teacher: str | None = None) -> float | None:
        return self.pass_rate_row(problem_id, teacher)["pass_rate"]


class TracePolicy:
    """Base for per-trace policies: ``switch`` names the ``CurateConfig`` flag that turns the policy
    on (None: always on), so a policy file holds its name, its switch and its ``keep``."""

    name: ClassVar[str] = ""
    switch: ClassVar[str | None] = None

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> TracePolicy | None:
        return cls() if cls.switch is None or getattr(cfg, cls.switch) else None


def build_policies(cfg: CurateConfig) -> list[Any]:
    """Instances of every ``POLICIES`` entry that ``cfg`` switches on, in table order."""
    from ..registry import load
    from . import POLICIES

    return [p for p in (load(row.policy).from_config(cfg) for row in POLICIES.values()) if p is not None]


def dependencies(cfg: CurateConfig, recipe: Any, layout: Layout) -> dict[str, Any]:
    """``{"inputs": [...], "config": {policy: ...}}``: what the policies ``cfg`` switches on read
    besides the stage's own inputs (their ``depends`` hooks); nothing is loaded or built here."""
    from ..registry import load
    from . import POLICIES

    inputs: list[Any] = []
    config: dict[str, Any] = {}
    for key, row in POLICIES.items():
        depends = getattr(load(row.policy), "depends", None)
        if depends is None:
            continue
        got = depends(cfg, recipe, layout) or {}
        inputs += got.get("inputs", [])
        if got.get("config"):
            config[key] = got["config"]
    return {"inputs": inputs, "config": config}


def split(policies: list[Any]) -> tuple[list[Policy], list[GroupPolicy]]:
    """``(per-trace, per-group)`` policies; anything else is a programming error named here."""
    per_trace, per_group = [], []
    for p in policies:
        if hasattr(p, "select"):
            per_group.append(p)
        elif hasattr(p, "keep"):
            per_trace.append(p)
        else:
            raise TypeError(f"curation policy {type(p).__name__} has neither keep() nor select()")
    return per_trace, per_group


def judge(policies: list[Policy], problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
    """``(True, "")`` when every per-trace policy keeps the trace, else ``(False, first refusal's reason)``."""
    for policy in policies:
        result = policy.keep(problem, trace, verdict)
        ok, reason = (result, "") if isinstance(result, bool) else result
        if not ok:
            return False, reason or policy.name
    return True, ""


def select_group(policies: list[GroupPolicy], scope: str, problem: Problem, traces: list[Trace],
                 verdicts: dict[str, Verdict]) -> tuple[list[Trace], list[tuple[Trace, str]]]:
    """Run the group policies that act on ``scope`` in order; ``(kept, dropped with reasons)``."""
    dropped: list[tuple[Trace, str]] = []
    for policy in policies:
        if scope in policy.scope and traces:
            traces, out = policy.select(problem, traces, verdicts)
            dropped += [(t, reason or policy.name) for t, reason in out]
    return traces, dropped
