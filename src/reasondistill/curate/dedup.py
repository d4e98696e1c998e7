"""Per-problem policy: drop traces whose text repeats an earlier one (reason ``duplicate``) and,
with ``curate.dedup_jaccard``, near-duplicates (reason ``near_duplicate``).

Texts are compared after collapsing whitespace and case-folding; the first of each group in the
given (best-first) order is kept. A near-duplicate is a trace whose set of word
``curate.dedup_ngram``-grams has a Jaccard similarity of at least ``dedup_jaccard`` with a kept
trace's (a text shorter than n words is one gram). The comparison is exact and pairwise: a
problem has a handful of traces, so MinHash (e.g. datasketch) would only add an approximation
and a dependency. Acts on correct traces and negatives alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from ..records import Problem, Trace, Verdict
from .base import NEGATIVES, TRAIN


def text_key(trace: Trace) -> str:
    return " ".join(trace.raw.split()).casefold()


def word_ngrams(text: str, n: int) -> frozenset[tuple[str, ...]]:
    words = text.split()
    if len(words) < n:
        return frozenset([tuple(words)])
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class Dedup:
    jaccard: float | None = None  # also drop near-duplicates at or above this similarity
    ngram: int = 3
    name: ClassVar[str] = "duplicate"
    scope: ClassVar[tuple[str, ...]] = (TRAIN, NEGATIVES)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Dedup | None:
        return cls(cfg.dedup_jaccard, cfg.dedup_ngram) if cfg.dedup else None

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        seen: set[str] = set()
        kept_grams: list[frozenset] = []
        kept, dupes = [], []
        for trace in traces:
            key = text_key(trace)
            if key in seen:
                dupes.append((trace, self.name))
                continue
            if self.jaccard is not None:
                grams = word_ngrams(key, self.ngram)
                if any(jaccard(grams, other) >= self.jaccard for other in kept_grams):
                    dupes.append((trace, "near_duplicate"))
                    continue
                kept_grams.append(grams)
            kept.append(trace)
            seen.add(key)
        return kept, dupes
