"""Toy objective: SFT on the shorter half of the curated examples (at least one), with its own
option. One file; the test adds its row to ``OBJECTIVES``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasondistill import io
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import sft


@dataclass
class ShortestConfig:
    share: float = 0.5  # share of the examples kept, shortest completions first

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ConfigError(f"shortest.share must be in (0, 1], got {self.share}")


def run(train_cfg: Any, objective_cfg: ShortestConfig, data_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    examples = io.read_records(data_path, TrainExample)
    keep = max(1, round(len(examples) * objective_cfg.share))
    chosen = sorted(examples, key=lambda e: len(e.completion[-1]["content"]))[:keep]
    subset = Path(out_dir) / "shortest.jsonl"
    io.write_jsonl(subset, chosen)
    return sft.run(train_cfg, None, subset, out_dir, context=context)
