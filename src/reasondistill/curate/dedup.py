"""Per-problem policy: drop traces whose text repeats an earlier one (reason ``duplicate``).

Texts are compared after collapsing whitespace and case-folding; the first of each group in
the given (best-first) order is kept. Acts on correct traces and negatives alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import NEGATIVES, TRAIN


def text_key(trace: Trace) -> str:
    return " ".join(trace.raw.split()).casefold()


@dataclass(frozen=True)
class Dedup:
    name: ClassVar[str] = "duplicate"
    scope: ClassVar[tuple[str, ...]] = (TRAIN, NEGATIVES)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Dedup | None:
        return cls() if cfg.dedup else None

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        seen: set[str] = set()
        kept, dupes = [], []
        for trace in traces:
            key = text_key(trace)
            if key in seen:
                dupes.append((trace, self.name))
            else:
                kept.append(trace)
                seen.add(key)
        return kept, dupes
