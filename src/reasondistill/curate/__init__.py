"""Stage 3b, curate: turn verified traces into training data.

``POLICIES`` maps a policy name to ``module:Class``, applied in this order to every trace; the
first one that says no records its reason. Each class has ``from_config(cfg)`` (None when the
recipe turns it off) and ``keep(problem, trace, verdict) -> (bool, reason)``. The
``incorrect`` reason is special: such traces go to ``negatives.jsonl`` (for preference training)
instead of ``rejected.jsonl``. Per-problem steps follow: ``dedup.py`` then ``cap.py``.

Adding a policy: one file plus one row here.
"""

POLICIES = {
    "errored": "reasondistill.curate.errored:DropErrored",
    "truncated": "reasondistill.curate.truncated:DropTruncated",
    "hinted": "reasondistill.curate.hinted:DropHinted",
    "correct": "reasondistill.curate.correct:KeepCorrect",
    "formatted": "reasondistill.curate.formatted:RequireFormat",
}

from .base import INCORRECT, Policy, build_policies, judge  # noqa: E402
from .run import run  # noqa: E402  (binds the function over the submodule attribute)

__all__ = ["INCORRECT", "POLICIES", "Policy", "build_policies", "judge", "run"]
