"""Every path of a run folder, named once.

A run folder has one subfolder per stage; each stage writes its files and, last, its
``manifest.json`` there. Every reader and writer (stages, ``pipeline``, ``compare``,
``report``, the CLI) asks a :class:`Layout` for paths instead of spelling them, so moving
an artifact is a one-line change here. A standalone command (``reasondistill verify
--problems P --traces T --out D``) is the same stage run on a layout whose inputs and
output folder point where the user said (:meth:`Layout.override`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"

# artifact name -> (stage folder, file name inside it)
FILES: dict[str, tuple[str, str]] = {
    "train_problems": ("problems", "train.jsonl"),
    "eval_problems": ("problems", "eval.jsonl"),
    "probe_samples": ("probe", "samples.jsonl"),  # the student's answers on the training problems (SSB, tailored)
    "traces": ("generate", "traces.jsonl"),
    "student_traces": ("generate", "student_traces.jsonl"),  # tailored: the student's wrong answers, corrected
    "logprobs": ("generate", "logprobs"),  # a folder: the compact top-k store (``logprobs.py``)
    "verdicts": ("verify", "verdicts.jsonl"),
    "curated": ("curate", "train.jsonl"),
    "negatives": ("curate", "negatives.jsonl"),
    "rejected": ("curate", "rejected.jsonl"),
    "pass_rates": ("curate", "pass_rates.jsonl"),
    "selected_problems": ("curate", "selected_problems.jsonl"),  # problems a curation policy selects (GRPO prompts)
    "pairs": ("pairs", "pairs.jsonl"),
    "checkpoint": ("train", "model"),  # an HF folder with safetensors weights
    "loss_log": ("train", "loss.jsonl"),
    "warm_start": ("train", "warm_start"),  # a folder: the SFT pass an on-policy objective starts from
    "tracker_logs": ("train", "runs"),  # a folder: TensorBoard event files when train.report_to names it
}
ROOT_FILES = {
    "recipe_file": "recipe.yaml",
    "versions_file": "versions.json",
    "report_json": "report.json",
    "report_md": "report.md",
    "report_html": "report.html",
    "compare_json": "compare.json",
    "references_json": "references.json",  # what each run:NAME model reference resolved to
    "loop_json": "loop.json",  # `reasondistill loop`: the per-round table
}
EVAL_FILES = {"samples": "samples.jsonl", "summary": "summary.json", "audit": "audit.jsonl"}


@dataclass(frozen=True)
class Layout:
    """Paths of one run folder. ``dirs`` moves a stage's folder (``{"train": ...}`` or
    ``{"eval/student_after": ...}``); ``files`` points one artifact elsewhere (an input the
    user named)."""

    root: Path
    dirs: Mapping[str, Path] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def override(self, *, dirs: Mapping[str, str | Path] | None = None,
                 files: Mapping[str, str | Path | None] | None = None) -> Layout:
        """A copy with some stage folders or artifacts moved (``None`` values are ignored)."""
        unknown = set(files or {}) - set(FILES)
        if unknown:
            raise KeyError(f"unknown run-folder artifact(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(
            self, dirs={**self.dirs, **{k: Path(v) for k, v in (dirs or {}).items()}},
            files={**self.files, **{k: Path(v) for k, v in (files or {}).items() if v is not None}})

    # -- stage folders and their manifests
    def stage_dir(self, stage: str) -> Path:
        return self.dirs.get(stage, self.root / stage)

    def manifest(self, stage: str) -> Path:
        return self.stage_dir(stage) / MANIFEST

    # -- stage artifacts
    def path(self, artifact: str) -> Path:
        if artifact in self.files:
            return self.files[artifact]
        stage, name = FILES[artifact]
        return self.stage_dir(stage) / name

    def __getattr__(self, artifact: str) -> Path:
        if artifact in FILES:
            return self.path(artifact)
        if artifact in ROOT_FILES:
            return self.root / ROOT_FILES[artifact]
        raise AttributeError(artifact)

    # -- evaluations: eval/<model>/{samples.jsonl, summary.json, manifest.json}
    def eval_dir(self, model: str) -> Path:
        return self.dirs.get(f"eval/{model}", self.root / "eval" / model)

    def eval_file(self, model: str, kind: str) -> Path:
        return self.eval_dir(model) / EVAL_FILES[kind]

    # -- `reasondistill compare`: compare/{baseline.json, student_before/, entries/<name>/}
    def compare_dir(self) -> Path:
        return self.root / "compare"

    def compare_baseline(self) -> Path:
        return self.compare_dir() / "baseline.json"

    def compare_entry(self, name: str, model: str, seed: int = 0) -> Layout:
        """The layout an entry trains and evaluates in: the shared data stages, its own
        ``train`` folder and its own evaluation folder for ``model``; training seed ``k > 0``
        (``compare.train_seeds``) has its own under ``seed-<k>/``."""
        entry = self.compare_seed_dir(name, seed)
        return self.override(dirs={"train": entry / "train", f"eval/{model}": entry / "eval"})

    def compare_seed_dir(self, name: str, seed: int = 0) -> Path:
        entry = self.compare_dir() / "entries" / name
        return entry / f"seed-{seed}" if seed else entry

    def compare_stats(self, name: str, seed: int = 0) -> Path:
        return self.compare_seed_dir(name, seed) / "stats.json"
