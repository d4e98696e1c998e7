"""Checks every command makes before it writes anything: an ``--out`` that would replace or sit on
one of its inputs, or on another stage's finished folder, and counts that are not counts.

Both classes of mistake used to succeed (exit 0) and destroy data: ``problems data/train.jsonl
--out data`` replaced the user's file with Problem records; ``verify --out`` the generate folder
replaced its manifest; ``--num-processes 0`` was read as "unset". Each check here raises a
:class:`ConfigError` (exit 2) naming both paths or the option, before the stage opens a file.

Paths are compared resolved (symlinks, ``./x`` vs ``x``, relative vs absolute).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import Recipe, int_problem
from .errors import ConfigError
from .layout import COMPARE_ROOT, EVAL_FILES, FILES, MANIFEST, ROOT_FILES, ROUND_PREFIX, Layout

# what each command writes inside its --out folder (names or glob patterns of the first path part);
# ``None``: the command replaces the whole folder
STAGE_WRITES: dict[str, tuple[str, ...] | None] = {
    **{stage: tuple(sorted({name for s, name in FILES.values() if s == stage} | {MANIFEST}))
       for stage in {s for s, _ in FILES.values()}},
    "evaluate": (*EVAL_FILES.values(), MANIFEST),
    "report": tuple(ROOT_FILES[k] for k in ("report_json", "report_md", "report_html")),
    # a run folder: one folder per stage, evaluations, compare entries, loop rounds and root files
    "run": (*sorted({s for s, _ in FILES.values()}), "eval", COMPARE_ROOT, f"{ROUND_PREFIX}*",
            *ROOT_FILES.values()),
    "export": None,
    "harness": None,
}


@dataclass(frozen=True)
class Named:
    """A path as the user named it: ``--problems data/train.jsonl``, ``train.student=...``."""

    label: str
    path: Path

    def __str__(self) -> str:
        return f"{self.label} {self.path}"


def named(label: str, path: str | Path | None) -> Named | None:
    return None if path is None or str(path) == "" else Named(label, Path(path))


def _resolve(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child != parent and child.is_relative_to(parent)


def manifest_stage(folder: Path) -> str | None:
    """The ``stage`` a folder's manifest records; ``None`` when there is none (or it is unreadable:
    the stage itself reports that, naming the line)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    stage = data.get("stage") if isinstance(data, dict) else None
    return stage if isinstance(stage, str) else None


def check_out(out: str | Path, inputs: Iterable[Named | None], *, stage: str | None, writes: str,
              flag: str = "--out", keep: Iterable[str] = (), manifests: bool = True) -> None:
    """Refuse ``out`` (a :class:`ConfigError` naming both paths) when writing ``stage`` there would
    replace an input or another stage's work:

    - ``out`` holds the ``manifest.json`` of another stage (``stage=None``: of any stage, as a run
      folder has none at its root); the same stage's folder is fine, so re-runs resume
      (``manifests=False``: the command writes beside a manifest, never over it);
    - ``out`` is an input, or lies inside an input folder (a model folder, a logprob store);
    - an input lies where the command writes inside ``out`` (``STAGE_WRITES[writes]``), except the
      root files named in ``keep`` (a run's own ``recipe.yaml``, rewritten with the same recipe).
    """
    out = Path(out)
    r_out = _resolve(out)
    found = manifest_stage(r_out) if manifests and r_out.is_dir() else None
    if found is not None and found != stage:
        what = {"run": "a run folder", "export": "the export", "harness": "the harness results"}.get(
            writes, f"the {stage} stage")
        raise ConfigError(f"{flag} {out}: holds the finished {found} stage ({out / MANIFEST}); writing {what} "
                          f"there would replace it; choose another {flag}")
    names = STAGE_WRITES[writes]
    for item in inputs:
        if item is None or not item.path.exists():
            continue  # nothing there to lose (a missing input is the stage's own error)
        r_in = _resolve(item.path)
        if r_in == r_out:
            raise ConfigError(f"{flag} {out} is the input {item}; writing there would replace it; "
                              f"choose another {flag}")
        if r_in.is_dir() and _inside(r_out, r_in):
            raise ConfigError(f"{flag} {out} is inside the input folder {item}; writing there would change "
                              f"that input; choose another {flag}")
        if not _inside(r_in, r_out):
            continue
        first = r_in.relative_to(r_out).parts[0]
        if first in keep:
            continue
        if names is None or any(fnmatch.fnmatchcase(first, pattern) for pattern in names):
            raise ConfigError(f"{flag} {out} would overwrite the input {item} (the command writes {first} "
                              f"there); choose another {flag}, or move the input")


def model_input(spec: str | Path | None) -> Path | None:
    """The local folder or file a model spec names (a run folder means its ``train/model``), else
    ``None`` (a packaged name, hub id, ``teacher``)."""
    if spec is None or str(spec) in ("", "teacher", "student"):
        return None
    p = Path(str(spec)).expanduser()
    if p.is_dir() and not (p / "config.json").exists() and (Layout(p).checkpoint / "config.json").exists():
        return Layout(p).checkpoint
    return p if p.exists() else None


def recipe_inputs(recipe: Recipe, recipe_arg: str | Path | None, *, sources: bool = True) -> list[Named | None]:
    """The local paths a recipe reads: its own file, problem sources (``sources``: a whole run reads
    them, a single stage reads the files its flags name), prompt templates and model folders
    (a missing or non-path value is skipped by :func:`check_out`)."""
    items: list[Named | None] = []
    if recipe_arg is not None and Path(str(recipe_arg)).is_file():
        items.append(named("recipe", recipe_arg))
    problems = recipe.problems
    if sources and problems.source != "reasoning_gym":
        items.append(named("problems.source", problems.source))
    if sources:
        items.append(named("problems.eval_source", problems.eval_source))
    prompt = recipe.generate.prompt
    for key in ("template", "rationalize_template", "ssb_template", "tailored_template"):
        items.append(named(f"generate.prompt.{key}", getattr(prompt, key, None)))
    models = {"train.student": recipe.train.student,
              "curate.student_aware.model": recipe.curate.student_aware.model}
    for i, t in enumerate(recipe.teachers()):
        models[f"teacher[{i}].model"] = t.model
    objective = recipe.train.objective
    models["train.objective.teacher"] = objective.get("teacher") if isinstance(objective, Mapping) else None
    for label, spec in models.items():
        if isinstance(spec, str) and not spec.startswith("run:"):
            items.append(named(label, model_input(spec)))
    return items


# ---------------------------------------------------------------------------
# int options typed on the command line


# the smallest value of an int flag whose default does not say it (the rule of
# ``config.int_floor``: a default of 0 means >= 0, anything else a count >= 1); each 0 here is
# documented in the flag's help
FLAG_FLOORS: dict[str, int] = {
    "port": 0,  # --port 0: any free port
    "seed": 0,
    "n_train": 0,  # --n-train 0: no training problems
    "n_eval": 0,  # --n-eval 0: no held-out problems
}
PORT_MAX = 65535


def check_int_flags(actions: Iterable[argparse.Action], args: argparse.Namespace) -> None:
    """Every ``type=int`` option of the command against its floor (:data:`FLAG_FLOORS`, else the
    default's rule), through the same check as recipe keys, so ``--num-processes 0`` is refused
    instead of read as "unset"."""
    for action in actions:
        if action.type is not int or not action.option_strings:
            continue
        value = getattr(args, action.dest, None)
        if value is None:
            continue
        floor = FLAG_FLOORS[action.dest] if action.dest in FLAG_FLOORS else (0 if action.default == 0 else 1)
        flag = action.option_strings[-1]
        if (problem := int_problem(value, floor)) is not None:
            raise ConfigError(f"{flag} {value}: {problem}")
        if action.dest == "port" and value > PORT_MAX:
            raise ConfigError(f"{flag} {value}: a port is 0..{PORT_MAX} (0: any free port)")
