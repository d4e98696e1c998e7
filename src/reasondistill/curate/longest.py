"""Per-problem policy: keep only the ``curate.length.longest`` longest correct traces of each problem
(reason ``not_longest``): the counterpart of shortest-correct-of-K, for comparing short against
long rationales at equal trace counts. Same ordering rules as ``shortest.py`` otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import CurateConfig
from .shortest import Shortest


@dataclass(frozen=True)
class Longest(Shortest):
    name: ClassVar[str] = "not_longest"
    sign: ClassVar[int] = -1

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> Longest | None:
        return cls(cfg.length.longest, cfg.length.unit) if cfg.length.longest > 0 else None
