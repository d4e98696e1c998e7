"""Stage 3b, curate: turn verified traces into training data.

``POLICIES`` maps a policy name to ``module:Class``. Each class has ``from_config(cfg)`` (None
when the recipe turns it off) and either ``keep(problem, trace, verdict) -> (bool, reason)``
(per trace; the first refusal records its reason) or ``select(problem, traces, verdicts)``
(per problem group, e.g. dedup and the per-problem cap); see ``base.py``. The ``incorrect``
reason is special: such traces go to the negatives (for preference training) instead of the
rejected rows.

Adding a policy: one file plus one row here.
"""

POLICIES = {
    "errored": "reasondistill.curate.errored:DropErrored",
    "truncated": "reasondistill.curate.truncated:DropTruncated",
    "hinted": "reasondistill.curate.hinted:DropHinted",
    "correct": "reasondistill.curate.correct:KeepCorrect",
    "formatted": "reasondistill.curate.formatted:RequireFormat",
    "dedup": "reasondistill.curate.dedup:Dedup",
    "cap": "reasondistill.curate.cap:Cap",
}

from .base import INCORRECT, GroupPolicy, Policy, build_policies, judge  # noqa: E402
from .run import run  # noqa: E402  (binds the function over the submodule attribute)

__all__ = ["INCORRECT", "POLICIES", "GroupPolicy", "Policy", "build_policies", "judge", "run"]
