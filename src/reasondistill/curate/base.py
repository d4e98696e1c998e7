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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict

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

    return [p for p in (load(target).from_config(cfg) for target in POLICIES.values()) if p is not None]


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
