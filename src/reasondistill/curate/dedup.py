"""Per-problem step: drop traces whose text repeats an earlier one (reason ``duplicate``).

Texts are compared after collapsing whitespace and case-folding; the first of each group in the
given order is kept, so callers pass traces in preference order."""

from __future__ import annotations

from ..records import Trace

REASON = "duplicate"


def text_key(trace: Trace) -> str:
    return " ".join(trace.raw.split()).casefold()


def dedup(traces: list[Trace]) -> tuple[list[Trace], list[Trace]]:
    """``(kept, duplicates)``, order preserved."""
    seen: set[str] = set()
    kept, dupes = [], []
    for trace in traces:
        key = text_key(trace)
        (dupes if key in seen else kept).append(trace)
        seen.add(key)
    return kept, dupes
