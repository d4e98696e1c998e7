"""``reasondistill run``: the declared sequence of stages over one run folder.

problems -> (probe) -> generate -> verify -> curate -> (pairs) -> train -> evaluate -> report. Each
stage is ``run(recipe, layout)`` and skips itself when its manifest shows it already
finished on the same config and inputs, so a crashed or interrupted run resumes where it
stopped; a finished run re-runs without loading a model. ``first``/``last`` (the CLI's
``--from``/``--until``) run a slice of the sequence: ``--from X`` re-runs X and every
later stage, ``--until X`` stops after X.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import io
from .config import Recipe, dump_recipe, load_recipe, run_reference, run_reference_recipe
from .errors import ConfigError
from .layout import Layout

log = logging.getLogger(__name__)


def _needs_pairs(recipe: Recipe) -> bool:
    from .train import objective
    return objective(recipe.train.method).data == "pairs"


@dataclass(frozen=True)
class Stage:
    """One step of the sequence: its ``run(recipe, layout, **kw)`` as a lazy import string,
    whether it takes the shared backend pool, and when it applies."""

    name: str
    run: str
    pool: bool = False
    when: Callable[[Recipe], bool] | None = None

    def applies(self, recipe: Recipe) -> bool:
        return self.when is None or self.when(recipe)

    def manifests(self, recipe: Recipe, layout: Layout) -> list[Path]:
        """The manifests that mark this stage finished (evaluation has one per model)."""
        if self.name == "evaluate":
            return [layout.eval_dir(m) / io.MANIFEST for m in recipe.eval.models]
        if self.name == "report":
            return [layout.report_json]
        return [layout.manifest(self.name)]


STAGES: tuple[Stage, ...] = (
    Stage("problems", "reasondistill.problems:run"),
    # the student answers the training problems first, for SSB hints and tailored learning
    Stage("probe", "reasondistill.evaluate.probe:run", pool=True, when=lambda r: r.generate.probes),
    Stage("generate", "reasondistill.generate:run", pool=True),
    Stage("verify", "reasondistill.verify:run"),
    Stage("curate", "reasondistill.curate:run"),
    Stage("pairs", "reasondistill.curate.pairs:run", when=_needs_pairs),
    Stage("train", "reasondistill.train:run"),
    Stage("evaluate", "reasondistill.evaluate:run", pool=True),
    Stage("report", "reasondistill.report:run"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def check_recipe(recipe: Recipe) -> None:
    """Every name a recipe gives (backend, verifier, objective, loss) against its table, and the
    backend's and objective's own options, before any data is read or model loaded."""
    from .backends import backend_options
    from .evaluate.roles import check_student_backend
    from .registry import check
    from .train import objective_config
    from .verifiers import VERIFIERS

    for i, teacher in enumerate(recipe.teachers()):
        backend_options(teacher, f"teacher[{i}]" if recipe.multi_teacher else "teacher")
    check_student_backend(recipe.eval)
    for where, spec in references(recipe).items():
        run_reference_recipe(spec, where)
    check(VERIFIERS, recipe.verify.verifier, "verifier (verify.verifier)", extra=("auto",))
    objective_config(recipe.train.method, recipe.train.objective)


# ---------------------------------------------------------------------------
# ``run:NAME`` model references: another recipe's trained student as a model


# the recipe fields that name a model, and so may hold a ``run:NAME`` reference
REFERENCE_FIELDS = ("teacher.model", "train.student", "train.objective.teacher", "curate.student_aware.model")
RUNS_ENV = "REASONDISTILL_RUNS"
_resolving: list[str] = []  # recipe names being resolved, outermost first (a reference cycle is an error)


def runs_root() -> Path:
    """Where ``run:NAME`` looks for (and makes) ``NAME``'s run folder: ``$REASONDISTILL_RUNS`` (the
    CLI's ``--runs-root``), else ``runs`` as ``reasondistill run`` uses by default."""
    return Path(os.environ.get(RUNS_ENV) or "runs")


def _get(recipe: Recipe, dotted: str) -> object:
    node: object = recipe
    for part in dotted.split("."):
        if isinstance(node, list):  # a teacher list, addressed by name
            node = next((t for t in node if t.name == part), None)
        else:
            node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def _reference_fields(recipe: Recipe) -> tuple[str, ...]:
    """REFERENCE_FIELDS, with ``teacher.<name>.model`` for each teacher of a list."""
    if not recipe.multi_teacher:
        return REFERENCE_FIELDS
    return tuple(f"teacher.{t.name}.model" for t in recipe.teacher) + REFERENCE_FIELDS[1:]


def references(recipe: Recipe) -> dict[str, str]:
    """``{field: "run:NAME"}`` for every model field of ``recipe`` that holds a run reference."""
    return {f: v for f in _reference_fields(recipe) if run_reference(v := _get(recipe, f))}  # type: ignore[misc]


def _with(recipe: Recipe, dotted: str, value: str) -> Recipe:
    """``recipe`` with the model field ``dotted`` set to ``value`` (a copy; the original is untouched)."""
    section, *rest = dotted.split(".")
    part = getattr(recipe, section)
    if isinstance(part, list):  # teacher.<name>.model of a teacher list
        part = [dataclasses.replace(t, **{rest[1]: value}) if t.name == rest[0] else t for t in part]
    elif rest[0] == "objective":
        part = dataclasses.replace(part, objective={**part.objective, rest[1]: value})
    elif len(rest) == 2:
        inner = dataclasses.replace(getattr(part, rest[0]), **{rest[1]: value})
        part = dataclasses.replace(part, **{rest[0]: inner})
    else:
        part = dataclasses.replace(part, **{rest[0]: value})
    return dataclasses.replace(recipe, **{section: part})


def resolve_reference(spec: str, where: str = "model", root: Path | None = None) -> dict:
    """The checkpoint ``run:NAME`` names: ``<runs root>/<recipe name>/train/model``, after running
    that recipe there when its checkpoint or report is missing (a finished run is reused without
    loading anything). Returns ``{ref, recipe, run, path, accuracy, ci95}``, accuracy being the
    run's held-out ``student_after`` accuracy from its report."""
    recipe_path = run_reference_recipe(spec, where)
    sub = load_recipe(recipe_path)
    folder = (root or runs_root()) / sub.name
    if sub.name in _resolving:
        raise ConfigError(f"{where} = {spec!r}: reference cycle through recipe(s) {' -> '.join(_resolving)}")
    layout = Layout(folder)
    if not ((layout.checkpoint / "config.json").is_file() and layout.report_json.is_file()):
        log.info("%s = %s: training it first in %s", where, spec, folder)
        _resolving.append(sub.name)
        try:
            run(sub, folder)
        finally:
            _resolving.pop()
    after = (io.read_json(layout.report_json).get("student_after") or {}) if layout.report_json.is_file() else {}
    if not (layout.checkpoint / "config.json").is_file():
        raise ConfigError(f"{where} = {spec!r}: the run in {folder} has no checkpoint ({layout.checkpoint})")
    return {"ref": spec, "recipe": str(recipe_path), "run": str(folder), "path": str(layout.checkpoint.resolve()),
            "accuracy": after.get("accuracy"), "ci95": after.get("ci95")}


def resolve_references(recipe: Recipe, out_dir: str | Path | None = None) -> Recipe:
    """``recipe`` with every ``run:NAME`` model field replaced by that run's checkpoint path; what
    each resolved to goes to ``<out_dir>/references.json`` (and from there into the report)."""
    refs = references(recipe)
    if not refs:
        return recipe
    done: dict[str, dict] = {}
    record = {}
    for where, spec in refs.items():
        done[spec] = done.get(spec) or resolve_reference(spec, where)
        record[where] = done[spec]
        recipe = _with(recipe, where, done[spec]["path"])
    if out_dir is not None:
        io.write_json(Layout(Path(out_dir)).references_json, record)
    return recipe


def select(first: str | None = None, last: str | None = None) -> tuple[Stage, ...]:
    """The slice ``first..last`` of :data:`STAGES` (names checked)."""
    from .registry import check

    names = dict.fromkeys(STAGE_NAMES)
    lo = STAGE_NAMES.index(check(names, first, "stage (--from)")) if first else 0
    hi = STAGE_NAMES.index(check(names, last, "stage (--until)")) if last else len(STAGES) - 1
    if lo > hi:
        raise ConfigError(f"--from {first} comes after --until {last}")
    return STAGES[lo: hi + 1]


peak_rss_mb = io.peak_rss_mb  # this process and its finished children, MB


def _teacher_calls(manifest: dict[str, Any], made: str, cached: str, total: str) -> tuple[int, int]:
    """(samples drawn, samples reused) by one stage in this invocation."""
    outputs = manifest.get("outputs", {})
    if manifest.get("this_run", {}).get("skipped"):
        return 0, int(outputs.get(total, 0))
    return int(outputs.get(made, 0)), int(outputs.get(cached, 0))


def check_trainable(recipe: Recipe, layout: Layout, curated: dict) -> None:
    """A curation that kept no trace leaves an objective that trains on traces (or pairs of them)
    nothing to learn from: stop here, with why each trace was dropped, rather than succeed (with
    ``--until curate``) or fail later on an empty file."""
    from .errors import InputError
    from .train import objective

    counts = (curated.get("outputs") or {}).get("counts") or {}
    if counts.get("kept", 1) or objective(recipe.train.method).data not in ("curated", "pairs"):
        return
    reasons = {**({"incorrect (kept as negatives)": counts["negatives"]} if counts.get("negatives") else {}),
               **(counts.get("dropped") or {})}
    dropped = ", ".join(f"{reason}: {n}" for reason, n in reasons.items()) or "none"
    raise InputError(f"curation kept none of {counts.get('traces', 0)} traces (dropped: {dropped}), so "
                     f"train.method {recipe.train.method} has nothing to learn from; each trace's reason is in "
                     f"{layout.path('rejected')} (check the teacher's answers in generate/traces.jsonl, or the "
                     "curate.* switches)", file=layout.path("curated"))


def run(recipe: Recipe, out_dir: str | Path, *, first: str | None = None, last: str | None = None) -> dict:
    """Run the stages ``first..last`` of ``recipe`` into ``out_dir``; return the report dict
    (or, when the slice ends before the report, ``{stage: result}``)."""
    from .backends import BackendPool
    from .registry import load

    check_recipe(recipe)
    started = time.time()
    layout = Layout(Path(out_dir))
    todo = select(first, last)
    as_given, recipe = recipe, resolve_references(recipe, layout.root)
    for stage in STAGES[: STAGES.index(todo[0])]:  # --from: what comes before must be finished
        missing = [m for m in stage.manifests(recipe, layout) if not m.exists()] if stage.applies(recipe) else []
        if missing:
            raise ConfigError(f"--from {todo[0].name}: stage '{stage.name}' has not finished in {layout.root} "
                              f"({missing[0]} is missing); run without --from first")
    for stage in todo:  # --from X re-runs X onwards: forget that they finished
        for manifest in stage.manifests(recipe, layout) if first else []:
            manifest.unlink(missing_ok=True)

    layout.root.mkdir(parents=True, exist_ok=True)
    io.write_text(layout.recipe_file, dump_recipe(as_given))  # run:NAME as typed; references.json resolves it
    io.write_json(layout.versions_file, io.library_versions())
    results: dict[str, Any] = {}
    calls = {"made": 0, "cached": 0}
    with BackendPool() as pool:
        for i, stage in enumerate(todo, 1):
            if not stage.applies(recipe):
                continue
            log.info("[%d/%d] %s", i, len(todo), stage.name)
            if stage.name == "report":
                spent = {"teacher_calls": calls["made"], "cached_teacher_calls": calls["cached"],
                         "wall_seconds": round(time.time() - started, 1), "peak_rss_mb": peak_rss_mb()}
                results[stage.name] = load(stage.run)(recipe, layout, this_run=spent)
                continue
            kwargs = {"pool": pool} if stage.pool else {}
            results[stage.name] = result = load(stage.run)(recipe, layout, **kwargs)
            if stage.name == "curate":
                check_trainable(recipe, layout, result)
            if stage.name == "generate":
                made, cached = _teacher_calls(result, "teacher_calls", "cached_teacher_calls", "n_traces")
            elif stage.name == "evaluate" and "teacher" in result:
                made, cached = _teacher_calls(result["teacher"], "calls", "cached", "n")
            else:
                continue
            calls["made"] += made
            calls["cached"] += cached
    return results.get("report", results)
