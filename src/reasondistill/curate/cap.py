"""Per-problem step: keep at most ``curate.max_per_problem`` correct traces (reason ``over_cap``),
preferring unhinted over hinted traces, then shorter completions, then file order."""

from __future__ import annotations

from ..records import Trace

REASON = "over_cap"


def preference_key(trace: Trace, position: int) -> tuple[bool, int, int]:
    """Sort key, best first: unhinted, then fewer characters, then earlier in the traces file."""
    return trace.hinted, len(trace.raw.strip()), position


def cap(traces: list[Trace], limit: int) -> tuple[list[Trace], list[Trace]]:
    """``(kept, over)`` of traces already sorted by :func:`preference_key`."""
    return traces[:limit], traces[limit:]
