"""Stage 3b, curate: turn verified traces into training data.

``POLICIES`` maps a policy name to a :class:`Row`, whose ``policy`` is ``module:Class``. Each class has ``from_config(cfg)`` (None
when the recipe turns it off) and either ``keep(problem, trace, verdict) -> (bool, reason)``
(per trace; the first refusal records its reason) or ``select(problem, traces, verdicts)``
(per problem group, e.g. dedup and the per-problem cap); see ``base.py``. The ``incorrect``
reason is special: such traces go to the negatives (for preference training) instead of the
rejected rows. Policies that need the whole stage input (pass rates, a model, the held-out
set) have optional hooks (``prepare``, ``report``, ``keeps_problem``, ``depends``; see ``base.py``).
Table order is application order, ``prepare`` included.

Adding a policy: one file plus one row here. A policy with options of its own keeps their
dataclass in its file; its row names the recipe section under ``curate:`` and that class, and
the schema (``config.CurateConfig``) builds and checks the section through the row. ``on`` holds
the ``curate:`` settings that switch the policy on: its documented example, and how the contract
suite switches every policy on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    policy: str  # "module:Class"
    section: str | None = None  # the recipe section under curate: with the policy's own options
    options: str | None = None  # "module:Class" of that section's options dataclass
    on: dict[str, Any] = field(default_factory=dict)  # curate: settings that switch it on ({}: always on)


_LENGTH = dict(section="length", options="reasondistill.curate.budget:LengthConfig")
_TEACHERS = dict(section="teachers", options="reasondistill.curate.best_teacher:TeachersConfig")

POLICIES: dict[str, Row] = {
    # per trace (first refusal wins)
    "errored": Row("reasondistill.curate.errored:DropErrored"),
    "truncated": Row("reasondistill.curate.truncated:DropTruncated", on={"drop_truncated": True}),
    "hinted": Row("reasondistill.curate.hinted:DropHinted", on={"include_hinted": False}),
    # before `correct`: pseudo-labels
    "self_consistency": Row("reasondistill.curate.consistency:SelfConsistency", section="self_consistency",
                            options="reasondistill.curate.consistency:SelfConsistencyConfig",
                            on={"self_consistency": {"min_share": 0.5}}),
    "correct": Row("reasondistill.curate.correct:KeepCorrect"),
    "formatted": Row("reasondistill.curate.formatted:RequireFormat", on={"require_format": True}),
    "over_budget": Row("reasondistill.curate.budget:DropOverBudget", **_LENGTH,
                       on={"length": {"budget": 1000, "budget_by_difficulty": [[0.5, 500]]}}),
    # per problem, in this order
    "decontaminate": Row("reasondistill.curate.decontam:Decontaminate", section="decontaminate",
                         options="reasondistill.curate.decontam:DecontaminateConfig", on={"decontaminate": {"ngram": 3}}),
    "pass_rate_band": Row("reasondistill.curate.band:PassRateBand",
                          on={"pass_rate_band": [0.0, 1.0], "pass_rate_inclusive": True}),
    "dedup": Row("reasondistill.curate.dedup:Dedup", on={"dedup": True, "dedup_jaccard": 0.8}),
    "best_teacher": Row("reasondistill.curate.best_teacher:BestTeacher", **_TEACHERS, on={"teachers": {"best": True}}),
    "student_aware": Row("reasondistill.curate.student_aware:StudentAware", section="student_aware",
                         options="reasondistill.curate.student_aware:StudentAwareConfig", on={"student_aware": {"top": 1}}),
    "shortest": Row("reasondistill.curate.shortest:Shortest", **_LENGTH, on={"length": {"shortest": 1}}),
    "longest": Row("reasondistill.curate.longest:Longest", **_LENGTH, on={"length": {"longest": 1}}),
    "random": Row("reasondistill.curate.random_pick:RandomPick", on={"random": 1}),
    "teacher_quota": Row("reasondistill.curate.teacher_quota:TeacherQuota", **_TEACHERS,
                         on={"teachers": {"quota": {"*": 1}}}),
    "teacher_share": Row("reasondistill.curate.teacher_share:TeacherShare", **_TEACHERS,
                         on={"teachers": {"share": {"*": 1.0}}}),
    "cap": Row("reasondistill.curate.cap:Cap"),
}

from .base import INCORRECT, GroupPolicy, Policy, build_policies, judge  # noqa: E402
from .run import run  # noqa: E402  (binds the function over the submodule attribute)

__all__ = ["INCORRECT", "POLICIES", "Row", "GroupPolicy", "Policy", "build_policies", "judge", "run"]
