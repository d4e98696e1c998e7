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
from .layout import RUNS, Layout, run_folder
from .records import StageManifest

log = logging.getLogger(__name__)


def _needs_pairs(recipe: Recipe) -> bool:
    from .train import objective
    return objective(recipe.train.method).data == "pairs"


def _probes(recipe: Recipe) -> bool:
    """Whether a generation mode the recipe switches on reads the student's answers (the probe stage)."""
    from .generate import modes_for
    return any(m.probes for m in modes_for(recipe.generate))


def _evaluated(result: dict[str, Any]) -> StageManifest:
    """The evaluate stage's manifest: one part per model."""
    parts = {model: StageManifest.of(m, "evaluate") for model, m in result.items()}
    return StageManifest("evaluate", skipped=all(p.skipped for p in parts.values()), parts=parts)


def _teacher_evaluated(result: StageManifest) -> tuple[int, int]:
    """The teacher calls of an evaluation: its teacher's answers (a student's are not teacher calls)."""
    return result.parts["teacher"].spent() if "teacher" in result.parts else (0, 0)


def _eval_manifests(recipe: Recipe, layout: Layout) -> list[Path]:
    return [layout.eval_dir(m) / io.MANIFEST for m in recipe.eval.models]


def _report_written(recipe: Recipe, layout: Layout) -> list[Path]:
    return [layout.report_json]


@dataclass(frozen=True)
class Stage:
    """One step of the sequence: its ``run(recipe, layout, **kw)`` as a lazy import string, whether
    it takes the shared backend pool, when it applies, which files mark it finished (default: its
    folder's manifest), which of its calls are the run's teacher calls, whether it takes what
    the run spent so far (the report), a check of its result before the next stage starts, and how
    its result reads as a :class:`StageManifest`."""

    name: str
    run: str
    pool: bool = False
    when: Callable[[Recipe], bool] | None = None
    finished: Callable[[Recipe, Layout], list[Path]] | None = None
    teacher_calls: Callable[[StageManifest], tuple[int, int]] | None = None
    spent: bool = False
    check: Callable[[Recipe, Layout, StageManifest], None] | None = None
    result: Callable[[Any], StageManifest] | None = None

    def applies(self, recipe: Recipe) -> bool:
        return self.when is None or self.when(recipe)

    def manifests(self, recipe: Recipe, layout: Layout) -> list[Path]:
        """The files that mark this stage finished (evaluation has one manifest per model)."""
        return self.finished(recipe, layout) if self.finished else [layout.manifest(self.name)]

    def execute(self, recipe: Recipe, layout: Layout, *, pool: Any = None, spent: dict[str, Any] | None = None,
                check: bool = True) -> StageManifest:
        """Run the stage (loaded when called, so a test may replace it) and check its result."""
        from .registry import load

        kwargs = {"pool": pool} if self.pool else {"this_run": spent} if self.spent else {}
        raw = load(self.run)(recipe, layout, **kwargs)
        if self.spent:  # the report: its dict is the result
            result = StageManifest(self.name, outputs=raw)
        else:
            result = self.result(raw) if self.result else StageManifest.of(raw, self.name)
        if check and self.check is not None:
            self.check(recipe, layout, result)
        return result


def check_trainable(recipe: Recipe, layout: Layout, curated: StageManifest) -> None:
    """A curation that kept no trace leaves an objective that trains on traces (or pairs of them)
    nothing to learn from: stop here, with why each trace was dropped, rather than succeed (with
    ``--until curate``) or fail later on an empty file."""
    from .errors import InputError
    from .train import objective

    counts = curated.outputs.get("counts") or {}
    if counts.get("kept", 1) or objective(recipe.train.method).data not in ("curated", "pairs"):
        return
    reasons = {**({"incorrect (kept as negatives)": counts["negatives"]} if counts.get("negatives") else {}),
               **(counts.get("dropped") or {})}
    dropped = ", ".join(f"{reason}: {n}" for reason, n in reasons.items()) or "none"
    raise InputError(f"curation kept none of {counts.get('traces', 0)} traces (dropped: {dropped}), so "
                     f"train.method {recipe.train.method} has nothing to learn from; each trace's reason is in "
                     f"{layout.path('rejected')} (check the teacher's answers in generate/traces.jsonl, or the "
                     "curate.* switches)", file=layout.path("curated"))


STAGES: tuple[Stage, ...] = (
    Stage("problems", "reasondistill.problems:run"),
    # the student answers the training problems first, for SSB hints and tailored learning
    Stage("probe", "reasondistill.evaluate.probe:run", pool=True, when=_probes),
    Stage("generate", "reasondistill.generate:run", pool=True, teacher_calls=StageManifest.spent),
    Stage("verify", "reasondistill.verify:run"),
    Stage("curate", "reasondistill.curate:run", check=check_trainable),
    Stage("pairs", "reasondistill.curate.pairs:run", when=_needs_pairs),
    Stage("train", "reasondistill.train:run"),
    Stage("evaluate", "reasondistill.evaluate:run", pool=True, teacher_calls=_teacher_evaluated,
          finished=_eval_manifests, result=_evaluated),
    Stage("report", "reasondistill.report:run", finished=_report_written, spent=True),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def check_recipe(recipe: Recipe) -> None:
    """The ``run:NAME`` model references a recipe gives, before any data is read or model loaded.
    Its names and options (backend, verifier, objective, curation policy and generation mode
    options) were checked against their tables when the recipe was built."""
    from .evaluate.roles import check_student_backend
    from .generate import modes_for

    check_student_backend(recipe.eval)

    for where, spec in references(recipe).items():
        run_reference_recipe(spec, where)
    modes_for(recipe.generate)  # a mode row is a generate-layer name: checked here, not in the schema


# ---------------------------------------------------------------------------
# ``run:NAME`` model references: another recipe's trained student as a model


# the recipe fields that name a model, and so may hold a ``run:NAME`` reference
# model fields that may hold ``run:NAME``; ``train.objective.teacher.model`` is a scoring teacher given as a
# backend config (kd's ``teacher: {backend, model}``), ``train.objective.teacher`` gkd's plain model
REFERENCE_FIELDS = ("teacher.model", "train.student", "train.objective.teacher", "train.objective.teacher.model",
                    "curate.student_aware.model")
RUNS_ENV = "REASONDISTILL_RUNS"
_resolving: list[str] = []  # recipe names being resolved, outermost first (a reference cycle is an error)


def runs_root() -> Path:
    """Where ``run:NAME`` looks for (and makes) ``NAME``'s run folder: ``$REASONDISTILL_RUNS`` (the
    CLI's ``--runs-root``), else ``runs`` as ``reasondistill run`` uses by default."""
    return Path(os.environ.get(RUNS_ENV) or RUNS)


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
    elif rest[0] == "objective" and len(rest) == 3:  # a field of a backend config inside the objective
        inner = {**part.objective[rest[1]], rest[2]: value}
        part = dataclasses.replace(part, objective={**part.objective, rest[1]: inner})
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
    folder = run_folder(sub.name, root or runs_root())
    if sub.name in _resolving:
        raise ConfigError(f"{where} = {spec!r}: reference cycle through recipe(s) {' -> '.join(_resolving)}")
    layout = Layout(folder)
    if not _finished(layout):
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


def _finished(layout: Layout) -> bool:
    return (layout.checkpoint / "config.json").is_file() and layout.report_json.is_file()


def resolve_finished(recipe: Recipe) -> Recipe:
    """``recipe`` with each ``run:NAME`` model field whose run has finished under the runs root
    replaced by its checkpoint; the others stay as they are. For the single-stage commands, which
    use a finished run but never start one (:func:`resolve_references` does, for whole runs)."""
    for where, spec in references(recipe).items():
        layout = Layout(run_folder(load_recipe(run_reference_recipe(spec, where)).name, runs_root()))
        if _finished(layout):
            recipe = _with(recipe, where, str(layout.checkpoint.resolve()))
    return recipe


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


def start(recipe: Recipe, layout: Layout, check: Callable[[Recipe], None] | None = None) -> Recipe:
    """The start every run shares (``run``, ``loop``): the recipe's names and options checked (and
    by ``check``, what the command needs beyond them), its ``run:NAME`` references resolved, the
    recipe as given and the library versions written into the run folder. Returns the resolved recipe."""
    check_recipe(recipe)
    if check is not None:
        check(recipe)
    resolved = resolve_references(recipe, layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    io.write_text(layout.recipe_file, dump_recipe(recipe))  # run:NAME as typed; references.json resolves it
    io.write_json(layout.versions_file, io.library_versions())
    return resolved


def run_stages(todo: tuple[Stage, ...], recipe: Recipe, layout: Layout, pool: Any, *, started: float | None = None,
               done: dict[str, StageManifest] | None = None, checks: bool = True,
               account: bool = True) -> dict[str, StageManifest]:
    """Run the stages ``todo`` that apply to ``recipe`` over ``layout``; ``{stage: result}``, after the
    results ``done`` of the stages run before them. A stage that takes what the run spent (the
    report) gets their teacher calls and the wall time since ``started`` (``account=False``: nothing,
    as for a loop round, whose files stay byte-identical when it is reused; the loop's own report
    accounts). ``checks=False`` skips the stages' checks of their results (a loop round checks the
    union of its rounds instead)."""
    started = time.time() if started is None else started
    results = dict(done or {})
    counted = {s.name: s.teacher_calls for s in (*STAGES, *todo) if s.teacher_calls}
    for i, stage in enumerate(todo, 1):
        if not stage.applies(recipe):
            continue
        log.info("[%d/%d] %s", i, len(todo), stage.name)
        calls = [counted[name](r) for name, r in results.items() if name in counted]
        spent = {"teacher_calls": sum(c for c, _ in calls), "cached_teacher_calls": sum(c for _, c in calls),
                 "wall_seconds": round(time.time() - started, 1), "peak_rss_mb": peak_rss_mb()}
        results[stage.name] = stage.execute(recipe, layout, pool=pool, spent=spent if account else None,
                                            check=checks)
    return results


def run(recipe: Recipe, out_dir: str | Path, *, first: str | None = None, last: str | None = None) -> dict:
    """Run the stages ``first..last`` of ``recipe`` into ``out_dir``; return the report dict
    (or, when the slice ends before the report, ``{stage: StageManifest}``)."""
    from .backends import BackendPool

    started = time.time()
    layout = Layout(Path(out_dir))
    check_recipe(recipe)
    todo = select(first, last)
    # which stages apply and what marks them finished never depends on a run:NAME reference
    for stage in STAGES[: STAGES.index(todo[0])]:  # --from: what comes before must be finished
        missing = [m for m in stage.manifests(recipe, layout) if not m.exists()] if stage.applies(recipe) else []
        if missing:
            raise ConfigError(f"--from {todo[0].name}: stage '{stage.name}' has not finished in {layout.root} "
                              f"({missing[0]} is missing); run without --from first")
    for stage in todo:  # --from X re-runs X onwards: forget that they finished
        for manifest in stage.manifests(recipe, layout) if first else []:
            manifest.unlink(missing_ok=True)
    recipe = start(recipe, layout)
    with BackendPool() as pool:
        results = run_stages(todo, recipe, layout, pool, started=started)
    return results["report"].outputs if "report" in results else results
