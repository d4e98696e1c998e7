"""``reasondistill compare``: several training objectives (or curation choices) on the same task,
data and step budget, each evaluated on the same held-out problems.

The data stages run once (problems, teacher traces, verification, curation); each entry
then trains in its own child process, so its wall time and peak memory are its own,
and is evaluated greedily. ``init`` chains entries (``sft+redi`` starts from ``sft``'s
checkpoint). An entry with ``curate`` settings re-curates the shared verified traces with them
into its own ``compare/entries/<name>/curate/`` (in its child process: a student-aware policy
loads the student there) and trains on that. An entry with ``loop`` settings runs student-driven
rounds (``reasondistill loop``) in ``compare/entries/<name>/loop/`` instead. Its last student has
the entries' step budget either way: with ``retrain: last`` each round trains
``compare.max_steps / rounds`` steps from the previous round's checkpoint; with ``scratch`` each
round trains ``compare.max_steps`` from ``train.student`` (the earlier rounds' students only pick).
``run:NAME`` model references resolve first.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import io
from .config import CurateConfig, LoopConfig, Recipe, TrainConfig, build
from .errors import ConfigError
from .layout import EVAL_FILES, Layout
from .train import objective_config

log = logging.getLogger(__name__)


@dataclass
class CompareEntry:
    """One row of the comparison: an objective, its options, and where its student starts."""

    name: str
    method: str = "sft"
    objective: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # name of an earlier entry whose checkpoint is this entry's student
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields to change for this entry
    curate: dict[str, Any] = field(default_factory=dict)  # CurateConfig fields to change: its own curated data
    loop: dict[str, Any] = field(default_factory=dict)  # LoopConfig fields: student-driven rounds instead of one run


def entries(recipe: Recipe) -> list[CompareEntry]:
    """Validate ``compare.entries`` fully (objective options included) before any model loads."""
    raw = recipe.compare.entries
    if not raw:
        raise ConfigError("compare.entries is empty: list the objectives to compare")
    out: list[CompareEntry] = []
    for i, item in enumerate(raw):
        entry = build(CompareEntry, item, f"compare.entries[{i}]")
        if entry.init is not None and entry.init not in {e.name for e in out}:
            raise ConfigError(f"compare.entries[{i}] ({entry.name}): init '{entry.init}' must name an earlier entry")
        if entry.name in {e.name for e in out}:
            raise ConfigError(f"compare.entries[{i}]: duplicate name '{entry.name}'")
        train_cfg(recipe, entry, Layout(Path(".")))  # builds and validates the objective's own config
        curate_cfg(recipe, entry)
        if entry.loop:
            loop_recipe(recipe, entry, Layout(Path(".")))
        out.append(entry)
    return out


def train_cfg(recipe: Recipe, entry: CompareEntry, layout: Layout) -> TrainConfig:
    data = {**dataclasses.asdict(recipe.train), **entry.train, "method": entry.method, "objective": entry.objective}
    if recipe.compare.max_steps > 0:
        data["max_steps"] = recipe.compare.max_steps  # the same step budget for every entry
    if entry.init is not None:
        data["student"] = str(layout.compare_entry(entry.init, entry.init).checkpoint)
    cfg = build(TrainConfig, data, f"compare.{entry.name}.train")
    objective_config(cfg.method, cfg.objective)  # the objective's own options, before anything loads
    return cfg


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys, nested sections merged key by key (``length: {shortest: 1}``
    keeps the other length settings)."""
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in over.items()}}


def curate_cfg(recipe: Recipe, entry: CompareEntry) -> CurateConfig:
    """The recipe's curation with the entry's ``curate`` changes (validated)."""
    if not entry.curate:
        return recipe.curate
    return build(CurateConfig, _merged(dataclasses.asdict(recipe.curate), entry.curate), f"compare.{entry.name}.curate")


def loop_recipe(recipe: Recipe, entry: CompareEntry, layout: Layout) -> Recipe:
    """The recipe a ``loop`` entry runs: its rounds split the step budget (``compare.max_steps``);
    each round evaluates only its own student (the table's teacher and baseline are the compare's)."""
    from . import loop

    cfg = build(LoopConfig, entry.loop, f"compare.{entry.name}.loop")
    train = train_cfg(recipe, entry, layout)
    if recipe.compare.max_steps > 0 and cfg.retrain == "last":
        if recipe.compare.max_steps % cfg.rounds:
            raise ConfigError(f"compare.{entry.name}.loop: with retrain: last the rounds split the step budget; "
                              f"compare.max_steps ({recipe.compare.max_steps}) must be divisible by rounds "
                              f"({cfg.rounds})")
        train = dataclasses.replace(train, max_steps=recipe.compare.max_steps // cfg.rounds)
    sub = dataclasses.replace(recipe, train=train, curate=curate_cfg(recipe, entry), loop=cfg,
                              eval=dataclasses.replace(recipe.eval, models=[]))
    loop.check(sub)
    return sub


def loop_dir(layout: Layout, name: str) -> Path:
    return layout.compare_dir() / "entries" / name / "loop"


def entry_layout(layout: Layout, entry: CompareEntry) -> Layout:
    """The shared data stages, the entry's own train and eval folders, and its own curate (and pairs)
    folders when it changes curation."""
    own = layout.compare_entry(entry.name, entry.name)
    folder = layout.compare_dir() / "entries" / entry.name
    return own.override(dirs={"curate": folder / "curate", "pairs": folder / "pairs"}) if entry.curate else own


def _log_like_parent() -> dict[str, Any]:
    """The parent's root logging (level, format) for a spawned child, which starts without any."""
    root = logging.getLogger()
    fmt = root.handlers[0].formatter if root.handlers else None
    return {"level": root.getEffectiveLevel(), "format": fmt._fmt if fmt else None,
            "datefmt": fmt.datefmt if fmt else None} if root.handlers else {}


def _train_in_child(recipe: Recipe, entry: CompareEntry, layout: Layout, queue, logs: dict[str, Any]) -> None:
    from .evaluate import evaluate_model
    from .pipeline import resolve_references, select
    from .registry import load

    if logs:  # so a loop entry's rounds report their progress like the parent's stages do
        logging.basicConfig(**logs)
    started = time.time()
    own = entry_layout(layout, entry)  # shared data stages, its own train and eval folders (and curation)
    extra: dict[str, Any] = {}
    if entry.loop:
        from . import loop

        sub = resolve_references(loop_recipe(recipe, entry, layout))
        done = Layout(loop_dir(layout, entry.name)).loop_json
        done_before = done.is_file() and len(io.read_json(done)["rounds"]) == sub.loop.rounds
        rounds = loop.run(sub, loop_dir(layout, entry.name))["rounds"]
        checkpoint = str(loop_dir(layout, entry.name) / rounds[-1]["checkpoint"])  # relative to the loop folder
        steps = sub.train.max_steps * (len(rounds) if sub.loop.retrain == "last" else 1)  # the last student's
        trained = {"this_run": {"skipped": done_before}, "outputs": {"steps": steps}}
        extra = {"curated": rounds[-1]["train_examples"], "rounds": len(rounds)}
    else:
        sub = dataclasses.replace(recipe, train=train_cfg(recipe, entry, layout), curate=curate_cfg(recipe, entry))
        sub = resolve_references(sub)  # an entry's own objective may name one (e.g. gkd's teacher: run:default)
        trained = {}
        for stage in select("curate" if entry.curate else "pairs", "train"):
            if stage.applies(sub):
                trained = load(stage.run)(sub, own)
        checkpoint = str(own.checkpoint)
    train_wall = time.time() - started
    evaluated = evaluate_model(sub, checkpoint, entry.name, own)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = {"train_wall_seconds": train_wall, "wall_seconds": time.time() - started, "peak_rss_mb": rss,
             "steps": trained["outputs"].get("steps"), **extra}
    stats_path = layout.compare_stats(entry.name)
    reused = all(m.get("this_run", {}).get("skipped") for m in (trained, evaluated))
    if reused and stats_path.exists():
        stats = io.read_json(stats_path)  # both reused: keep the figures measured when they ran
    else:
        io.write_json(stats_path, stats)
    queue.put(stats)


def run(recipe: Recipe, out_dir: str | Path) -> list[dict[str, Any]]:
    """Prepare the data once, then train and evaluate every entry; writes ``compare.json``."""
    from . import pipeline

    todo = entries(recipe)
    layout = Layout(Path(out_dir))
    recipe = pipeline.resolve_references(recipe, layout.root)
    pipeline.run(recipe, layout.root, last="curate")
    if "teacher" in recipe.eval.models:
        evaluate_teacher(recipe, layout)
    baseline_dir = None
    if recipe.compare.baseline:
        evaluate_baseline(recipe, layout)
        baseline_dir = baseline_layout(layout).eval_dir("student_before")
    rows = []
    ctx = mp.get_context("spawn")  # a fresh interpreter per entry: its own memory peak, no shared state
    for entry in todo:
        log.info("compare: %s (%s)", entry.name, entry.method)
        queue = ctx.Queue()
        proc = ctx.Process(target=_train_in_child, args=(recipe, entry, layout, queue, _log_like_parent()))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"compare entry '{entry.name}' failed (exit code {proc.exitcode}); see the log above")
        stats = queue.get()
        entry_eval = layout.compare_entry(entry.name, entry.name).eval_dir(entry.name)
        summary = io.read_json(entry_eval / EVAL_FILES["summary"])
        kept = stats["curated"] if entry.loop else \
            io.read_json(entry_layout(layout, entry).manifest("curate"))["outputs"]["counts"]["kept"]
        rows.append({"objective": entry.name, "method": entry.method, "curated": kept, "accuracy": summary["accuracy"],
                     "ci95": summary["ci95"], "tokens_per_answer": summary["mean_tokens"],
                     "wall_seconds": round(stats["wall_seconds"], 1),
                     "train_wall_seconds": round(stats["train_wall_seconds"], 1),
                     "peak_rss_mb": round(stats["peak_rss_mb"], 1), "steps": stats["steps"]})
        if baseline_dir is not None:
            rows[-1]["vs_untrained"] = paired_vs(entry_eval, baseline_dir)
    io.write_json(layout.compare_json, rows)
    return rows


def paired_vs(eval_dir: Path, baseline_dir: Path) -> dict[str, Any]:
    """Accuracy gain over the untrained student, problem by problem (``metrics.paired_difference``)."""
    from .metrics import paired_difference
    from .records import EvalSample

    diff = paired_difference(io.read_records(eval_dir / EVAL_FILES["samples"], EvalSample),
                             io.read_records(baseline_dir / EVAL_FILES["samples"], EvalSample))
    if diff["n"] == 0:
        return diff  # no problem in common: nothing to compare
    return {"delta": round(diff["delta"], 4), "ci95": [round(x, 4) for x in diff["ci95"]], "n": diff["n"],
            "wins": diff["wins"], "losses": diff["losses"]}


def baseline_layout(layout: Layout) -> Layout:
    """Where the untrained student's evaluation goes: ``compare/student_before/``."""
    return layout.override(dirs={"eval/student_before": layout.compare_dir() / "student_before"})


def evaluate_baseline(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """The untrained student on the same held-out problems; ``compare/baseline.json``."""
    from .evaluate import evaluate_model

    base = baseline_layout(layout)
    evaluate_model(recipe, recipe.train.student, "student_before", base)
    summary = io.read_json(base.eval_file("student_before", "summary"))
    row = {"model": recipe.train.student, "accuracy": summary["accuracy"], "ci95": summary["ci95"],
           "tokens_per_answer": summary["mean_tokens"]}
    io.write_json(layout.compare_baseline(), row)
    return row


def evaluate_teacher(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """The teacher on the same held-out problems (when ``eval.models`` names it), so the table shows
    how far above the untrained student the traces come from; ``compare/teacher.json``."""
    from .backends import BackendPool
    from .evaluate import evaluate_teacher as run_teacher

    own = layout.override(dirs={"eval/teacher": layout.compare_dir() / "teacher"})
    with BackendPool() as pool:
        run_teacher(recipe, own, pool)
    summary = io.read_json(own.eval_file("teacher", "summary"))
    row = {"model": recipe.teachers()[0].label,  # of a teacher list, the first is the one evaluated
           "accuracy": summary["accuracy"], "ci95": summary["ci95"], "tokens_per_answer": summary["mean_tokens"]}
    io.write_json(layout.compare_dir() / "teacher.json", row)
    return row


def load_teacher(out_dir: str | Path) -> dict[str, Any] | None:
    path = Layout(Path(out_dir)).compare_dir() / "teacher.json"
    return io.read_json(path) if path.exists() else None


def load_baseline(out_dir: str | Path) -> dict[str, Any] | None:
    path = Layout(Path(out_dir)).compare_baseline()
    return io.read_json(path) if path.exists() else None


def format_table(rows: list[dict[str, Any]], baseline: dict[str, Any] | None = None,
                 teacher: dict[str, Any] | None = None) -> str:
    head = (f"{'objective':<14} {'accuracy':>8} {'95% CI':>16} {'vs untrained, paired 95% CI':>30} "
            f"{'tok/answer':>10} {'wall s':>8} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    for label, ref in (("(teacher)", teacher), ("(untrained)", baseline)):
        if ref:
            lo, hi = ref["ci95"]
            lines.append(f"{label:<14} {ref['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} {'-':>30} "
                         f"{ref['tokens_per_answer']:>10.1f} {'-':>8} {'-':>8}")
    for r in rows:
        lo, hi = r["ci95"]
        vs = r.get("vs_untrained")
        paired = f"{vs['delta']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]" if vs and vs["n"] else "-"
        lines.append(f"{r['objective']:<14} {r['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} {paired:>30} "
                     f"{r['tokens_per_answer']:>10.1f} {r['wall_seconds']:>8.0f} {r['peak_rss_mb']:>8.0f}")
    return "\n".join(lines)
