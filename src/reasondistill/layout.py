"""Every path of a run folder, named once.

A run folder has one subfolder per stage; each stage writes its files and, last, its
``manifest.json`` there. Every reader and writer (stages, ``pipeline``, ``compare``,
``report``, the CLI) asks a :class:`Layout` for paths instead of spelling them, so moving
an artifact is a one-line change here. A standalone command (``reasondistill verify
--problems P --traces T --out D``) is the same stage run on a layout whose inputs and
output folder point where the user said (:meth:`Layout.override`). A loop round
(:meth:`Layout.round`) and a compare entry (:meth:`Layout.entry`) are run layouts of their own,
nested in the run folder, so ``loop`` and ``compare`` run the ordinary stages over them.
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
COMPARE_ROOT = "compare"
ROUND_PREFIX = "round-"  # a loop round's folder: round-<r>
PICK = "pick"  # a loop round: its student's answers on the training problems (an evaluation's model and folder)
# the files of nested runs only (a loop round, a compare entry), never at a run's root, so what a run
# writes at its root stays FILES' folders and ROOT_FILES: artifact -> (folder, "" for the root; file name)
NESTED_FILES: dict[str, tuple[str, str]] = {
    "picked": (PICK, "picked.jsonl"),  # a loop round: the training problems its student picked
    "union": ("data", "train.jsonl"),  # a loop round: the curated traces of rounds 1..r, once each
    "round_json": ("", "round.json"),  # a loop round: its row of the table
    "stats_json": ("", "stats.json"),  # a compare entry (per training seed): wall, memory, steps, tokens
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
# the stages a compare entry shares with its run (an entry with its own curation re-curates them)
SHARED_STAGES = ("problems", "probe", "generate", "verify", "curate", "pairs")
EVAL_FILES = {"samples": "samples.jsonl", "summary": "summary.json", "audit": "audit.jsonl"}
RUNS = "runs"  # where a recipe's run folder goes by default (and where run:NAME looks for it)


def run_folder(name: str, runs: str | Path | None = None) -> Path:
    """A recipe's run folder: ``<runs>/<recipe name>`` (``runs/<name>`` by default)."""
    return Path(runs or RUNS) / name


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
        unknown = set(files or {}) - set(FILES) - set(NESTED_FILES)
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
        if artifact in NESTED_FILES:
            folder, name = NESTED_FILES[artifact]
            return (self.stage_dir(folder) if folder else self.root) / name
        stage, name = FILES[artifact]
        return self.stage_dir(stage) / name

    def __getattr__(self, artifact: str) -> Path:
        if artifact in FILES or artifact in NESTED_FILES:
            return self.path(artifact)
        if artifact in ROOT_FILES:
            return self.root / ROOT_FILES[artifact]
        raise AttributeError(artifact)

    # -- evaluations: eval/<model>/{samples.jsonl, summary.json, manifest.json}
    def eval_dir(self, model: str) -> Path:
        return self.dirs.get(f"eval/{model}", self.root / "eval" / model)

    def eval_file(self, model: str, kind: str) -> Path:
        return self.eval_dir(model) / EVAL_FILES[kind]

    # -- nested runs: a loop round, a compare entry, a loop entry's rounds
    def round(self, r: int) -> Layout:
        """Round ``r`` of ``reasondistill loop`` as a run folder, ``round-<r>/``: it trains on the
        problems its student picked (``pick/picked.jsonl``; the student's sampled answers go to
        ``pick/`` too) and is evaluated on the loop's held-out problems."""
        root = self.root / f"{ROUND_PREFIX}{r}"
        return Layout(root, dirs={f"eval/{PICK}": root / PICK},
                      files={"train_problems": Layout(root).picked, "eval_problems": self.eval_problems})

    def loop(self) -> Layout:
        """Where a compare entry with ``loop`` settings runs its rounds: ``<entry>/loop/``."""
        return Layout(self.root / "loop")

    def entry(self, name: str, seed: int = 0, *, own_curation: bool = False) -> Layout:
        """Compare entry ``name`` as a run folder, ``compare/entries/<name>/`` (training seed
        ``k > 0``: its ``seed-<k>/``): the run's data stages, its own ``train/`` and its own
        evaluation (``eval/``, as model ``name``). ``own_curation``: its own ``curate/`` and ``pairs/``,
        shared by its seeds."""
        folder = self.compare_dir() / "entries" / name
        root = folder / f"seed-{seed}" if seed else folder
        shared = {s: folder / s if own_curation and s in ("curate", "pairs") else self.stage_dir(s)
                  for s in SHARED_STAGES}
        return Layout(root, dirs={**shared, f"eval/{name}": root / "eval"}, files=self.files)

    # -- `reasondistill compare`: compare/{baseline.json, teacher.json, student_before/, teacher/, entries/<name>/}
    def compare_dir(self) -> Path:
        return self.root / COMPARE_ROOT

    def compare_baseline(self) -> Path:
        return self.compare_dir() / "baseline.json"

    def compare_teacher(self) -> Path:
        return self.compare_dir() / "teacher.json"

    def compare_plot(self) -> Path:
        return self.compare_dir() / "accuracy_vs_compute.png"

    def compare_models(self) -> Layout:
        """The run with the untrained student's and the teacher's evaluations in ``compare/``."""
        return self.override(dirs={f"eval/{m}": self.compare_dir() / m for m in ("student_before", "teacher")})
