"""Stage 3b, curate: turn verified traces into training data.

``POLICIES`` maps a policy name to ``module:Class``. Each class has ``from_config(cfg)`` (None
when the recipe turns it off) and either ``keep(problem, trace, verdict) -> (bool, reason)``
(per trace; the first refusal records its reason) or ``select(problem, traces, verdicts)``
(per problem group, e.g. dedup and the per-problem cap); see ``base.py``. The ``incorrect``
reason is special: such traces go to the negatives (for preference training) instead of the
rejected rows. Policies that need the whole stage input (pass rates, a model, the held-out
set) have optional hooks (``prepare``, ``report``, ``keeps_problem``, ``depends``; see ``base.py``).
Table order is application order, ``prepare`` included.

Adding a policy: one file plus one row here.
"""

POLICIES = {
    # per trace (first refusal wins)
    "errored": "reasondistill.curate.errored:DropErrored",
    "truncated": "reasondistill.curate.truncated:DropTruncated",
    "hinted": "reasondistill.curate.hinted:DropHinted",
    "self_consistency": "reasondistill.curate.consistency:SelfConsistency",  # before `correct`: pseudo-labels
    "correct": "reasondistill.curate.correct:KeepCorrect",
    "formatted": "reasondistill.curate.formatted:RequireFormat",
    "over_budget": "reasondistill.curate.budget:DropOverBudget",
    # per problem, in this order
    "decontaminate": "reasondistill.curate.decontam:Decontaminate",
    "pass_rate_band": "reasondistill.curate.band:PassRateBand",
    "dedup": "reasondistill.curate.dedup:Dedup",
    "best_teacher": "reasondistill.curate.best_teacher:BestTeacher",
    "student_aware": "reasondistill.curate.student:StudentAware",
    "shortest": "reasondistill.curate.shortest:Shortest",
    "longest": "reasondistill.curate.longest:Longest",
    "random": "reasondistill.curate.random_pick:RandomPick",
    "teacher_quota": "reasondistill.curate.teacher_quota:TeacherQuota",
    "teacher_share": "reasondistill.curate.teacher_share:TeacherShare",
    "cap": "reasondistill.curate.cap:Cap",
}

from .base import INCORRECT, GroupPolicy, Policy, build_policies, judge  # noqa: E402
from .run import run  # noqa: E402  (binds the function over the submodule attribute)

__all__ = ["INCORRECT", "POLICIES", "GroupPolicy", "Policy", "build_policies", "judge", "run"]
