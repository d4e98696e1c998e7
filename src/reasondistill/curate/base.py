"""The curation policy contract: per-trace keep/drop decisions with a reason.

A policy is a small class with a ``name``, a ``from_config(cfg)`` classmethod that returns an
instance or None (the recipe switched it off), and ``keep(problem, trace, verdict)`` returning
``(True, "")`` or ``(False, reason)``; a bare bool is accepted too (the reason is then the
policy's name). Policies run in ``POLICIES`` order and the first refusal wins, like datatrove's
filters writing exclusions with their reason.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict

INCORRECT = "incorrect"  # the reason that routes a trace to negatives.jsonl rather than rejected.jsonl


@runtime_checkable
class Policy(Protocol):
    name: str

    def keep(self, problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str] | bool: ...


def build_policies(cfg: CurateConfig) -> list[Policy]:
    """Instances of every ``POLICIES`` entry that ``cfg`` switches on, in table order."""
    from . import POLICIES

    out = []
    for target in POLICIES.values():
        module, _, cls = target.partition(":")
        policy = getattr(importlib.import_module(module), cls).from_config(cfg)
        if policy is not None:
            out.append(policy)
    return out


def judge(policies: list[Policy], problem: Problem, trace: Trace, verdict: Verdict) -> tuple[bool, str]:
    """``(True, "")`` when every policy keeps the trace, else ``(False, first refusal's reason)``."""
    for policy in policies:
        result = policy.keep(problem, trace, verdict)
        ok, reason = (result, "") if isinstance(result, bool) else result
        if not ok:
            return False, reason or policy.name
    return True, ""
