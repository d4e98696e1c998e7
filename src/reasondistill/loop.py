"""``reasondistill loop``: student-driven rounds of distillation.

Each round r (a sub-run folder ``DIR/round-r/``, built from the ordinary stages):

1. **pick**: the current student (``train.student`` in round 1, else round r-1's checkpoint)
   samples ``loop.student_samples`` answers per training problem (``round-r/pick/``); the
   problems whose pass rate p lies in ``loop.pick_band`` (``lo <= p < hi``; the default [0, 1)
   leaves out what it already always solves) go to ``round-r/pick/picked.jsonl``, lowest
   pass rate first, at most ``loop.max_problems``;
2. **teach**: the teacher writes traces for the picked problems; they are verified and curated
   (``round-r/generate``, ``verify``, ``curate``). With ``loop.self_teach`` the teacher of round
   r >= 2 is round r-1's student (transformers backend): iterative self-training;
3. **retrain**: on the union of the curated traces of rounds 1..r (``round-r/data/train.jsonl``,
   identical prompt+completion pairs once), from round r-1's checkpoint and optimizer state
   (``loop.retrain: last``; ``round-r/train/optimizer.pt``, the Adam moments and step counts;
   each round keeps its own warmup and learning-rate schedule) or from ``train.student`` (``scratch``);
4. **evaluate** on the held-out problems (round 1 also evaluates what ``eval.models`` names, e.g.
   the untrained student, which becomes round 0 of the table).

The problems are made once, in ``DIR/problems/``. Every step is a cached stage, so killing the
loop and running the same command again continues at the unfinished round and stage, and
raising ``loop.rounds`` continues a finished loop. ``DIR/loop.json`` and the report
(``DIR/report.{json,md,html}``: the last round's report plus a ``loop`` section) hold the per-round
table: held-out accuracy with its Wilson CI, problems picked, traces added and wall time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import io
from .config import Recipe
from .errors import ConfigError
from .layout import PICK, Layout

log = logging.getLogger(__name__)


def check(recipe: Recipe) -> None:
    """What a loop needs beyond a valid recipe: an objective that trains on the curated file alone
    (the union of rounds has no single logprob store or pair file)."""
    from .train import objective

    obj = objective(recipe.train.method)
    if obj.data != "curated" or obj.needs_logprobs:
        raise ConfigError(f"loop: train.method '{recipe.train.method}' trains on "
                          f"{'teacher logprobs' if obj.needs_logprobs else obj.data}; a loop retrains on the union "
                          "of curated traces, so use an objective whose data is the curated file (sft, multitask, gkd)")


def pass_rates(samples_path: Path) -> dict[str, float]:
    """``{problem_id: share of passed sampled answers}`` (sample_idx >= 1; the greedy answer is 0)."""
    from .records import EvalSample

    seen: dict[str, list[bool]] = defaultdict(list)
    for s in io.read_records(samples_path, EvalSample):
        if s.sample_idx >= 1:
            seen[s.problem_id].append(s.passed)
    return {pid: sum(v) / len(v) for pid, v in seen.items()}


def pick(recipe: Recipe, root: Layout, r: int, student: str) -> tuple[Path, dict[str, Any]]:
    """Step 1: the problems of the training split the student's pass rate puts in the band."""
    from .evaluate import evaluate_model
    from .records import Problem, StageManifest

    cfg = recipe.loop
    here = root.round(r)
    problems = io.read_records(root.train_problems, Problem)
    skipped = True
    if cfg.student_samples == 0:
        chosen, rates = problems, {}
    else:
        layout = here.override(files={"eval_problems": root.train_problems})
        sampled = dataclasses.replace(recipe, eval=dataclasses.replace(
            recipe.eval, samples=cfg.student_samples, n=None, seed=recipe.eval.seed + r))
        skipped = StageManifest.of(evaluate_model(sampled, student, PICK, layout)).skipped
        rates = pass_rates(here.eval_file(PICK, "samples"))
        lo, hi = cfg.pick_band
        order = {p.id: i for i, p in enumerate(problems)}
        chosen = sorted((p for p in problems if lo <= rates.get(p.id, 0.0) < hi),
                        key=lambda p: (rates.get(p.id, 0.0), order[p.id]))
    chosen = chosen[: cfg.max_problems] if cfg.max_problems else chosen
    io.write_jsonl(here.train_problems, chosen)
    mean = round(sum(rates.values()) / len(rates), 4) if rates else None
    return here.train_problems, {"problems_picked": len(chosen), "student_pass_rate": mean,
                                 "skipped": skipped}


def round_recipe(recipe: Recipe, r: int, previous: Path | None) -> Recipe:
    """Round r's recipe: its teacher (round r-1's student with ``self_teach``), its starting
    checkpoint (``retrain``), a fresh sampling seed, and the models it evaluates."""
    cfg = recipe.loop
    teacher = recipe.teacher
    if cfg.self_teach and previous is not None:
        from .evaluate.roles import student_config
        teacher = student_config(recipe, str(previous))  # on the backend the student is evaluated on
    start = str(previous) if cfg.retrain == "last" and previous is not None else recipe.train.student
    train = recipe.train
    if cfg.retrain == "last":  # the optimizer goes on too: its state is saved beside each round's model
        from .train.checkpoints import OPTIMIZER
        train = dataclasses.replace(train, carry_optimizer=True, init_optimizer=(
            str(Path(previous).parent / OPTIMIZER) if previous is not None else train.init_optimizer))
    models = list(recipe.eval.models) if r == 1 else []
    models = [m for m in models if m != "student_after"] + ["student_after"]
    return dataclasses.replace(
        recipe, teacher=teacher, generate=dataclasses.replace(recipe.generate, seed=recipe.generate.seed + r - 1),
        train=dataclasses.replace(train, student=start), eval=dataclasses.replace(recipe.eval, models=models))


def union(paths: list[Path], out: Path) -> tuple[int, int]:
    """Write the curated examples of ``paths`` (rounds 1..r) once each to ``out``; (total, new in the last)."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    added = 0
    for i, path in enumerate(paths):
        for _, row in io.iter_jsonl(path, allow_empty=True):
            key = io.sha256_json([row.get("prompt"), row.get("completion")])
            if key not in seen:
                seen.add(key)
                rows.append(row)
                added += i == len(paths) - 1
    io.write_jsonl(out, rows)
    return len(rows), added


def teacher_label(recipe: Recipe) -> str:
    """The teacher column of the round table: a model, a backend, or a list's ``name=model`` pairs."""
    from .backends import label
    if recipe.multi_teacher:
        return ", ".join(f"{t.name}={label(t)}" for t in recipe.teachers())
    return label(recipe.teacher)


def within(spec: str, root: Path) -> str:
    """``spec`` for the round table: a path inside the loop folder (an earlier round's checkpoint)
    relative to it, so ``loop.json`` reads the same wherever the folder is and however it was named."""
    path = Path(spec)
    if path.exists():
        rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
        if rel.parts[:1] != ("..",):
            return rel.as_posix()
    return spec


def run_round(recipe: Recipe, root: Layout, r: int, previous: Path | None, pool: Any) -> dict[str, Any]:
    """One round (see the module docstring); its table row."""
    from .pipeline import run_stages, select

    started = time.time()
    here = root.round(r)
    sub = round_recipe(recipe, r, previous)
    student = str(previous) if previous is not None else recipe.train.student
    _, row = pick(recipe, root, r, student)
    skipped = [row.pop("skipped")]
    row = {"round": r, "teacher": within(teacher_label(sub), root.root), "start": within(sub.train.student, root.root),
           **row}
    if row["problems_picked"] == 0:
        return {**row, "stopped": "no training problem in loop.pick_band", "wall_seconds": time.time() - started}
    data = run_stages(select("generate", "curate"), sub, here, pool, started=started, checks=False)
    n_train, added = union([root.round(k).curated for k in range(1, r + 1)], here.union)
    if n_train == 0:
        return {**row, "stopped": "no curated trace to train on", "wall_seconds": time.time() - started}
    done = run_stages(select("train", "report"), sub, here.override(files={"curated": here.union}), pool,
                      started=started, done=data, account=False)
    skipped += [done[s].skipped for s in ("generate", "verify", "curate", "train")]
    skipped += [m.skipped for m in done["evaluate"].parts.values()]
    after = io.read_summary(here.eval_file("student_after", "summary"))
    row.update(traces_added=added, train_examples=n_train, accuracy=after.accuracy, ci95=after.ci95,
               n_eval=after.n, checkpoint=here.checkpoint.relative_to(root.root).as_posix(),
               wall_seconds=round(time.time() - started, 1))
    if all(skipped) and here.round_json.is_file():  # nothing ran again: keep the figures measured when it ran
        row["wall_seconds"] = io.read_json(here.round_json).get("wall_seconds", row["wall_seconds"])
    io.write_json(here.round_json, row)
    return row


def run(recipe: Recipe, out_dir: str | Path) -> dict[str, Any]:
    """Run (or continue) ``recipe.loop.rounds`` rounds into ``out_dir``; returns ``loop.json``'s dict."""
    from . import pipeline
    from .backends import BackendPool
    from .report import build_report, write_report

    root = Layout(Path(out_dir))
    recipe = pipeline.start(recipe, root, check)
    rows: list[dict[str, Any]] = []
    previous: Path | None = None
    stopped = None
    with BackendPool() as pool:
        pipeline.run_stages(pipeline.select("problems", "problems"), recipe, root, pool)
        for r in range(1, recipe.loop.rounds + 1):
            log.info("loop: round %d/%d", r, recipe.loop.rounds)
            row = run_round(recipe, root, r, previous, pool)
            if "stopped" in row:
                stopped = f"round {r}: {row['stopped']}"
                log.warning("loop: stopping at %s", stopped)
                break
            rows.append(row)
            previous = root.root / row["checkpoint"]  # recorded relative to the loop folder
    before = root.round(1).eval_file("student_before", "summary")
    base = io.read_summary(before) if before.is_file() else None
    result = {"rounds": rows, "stopped": stopped, "config": dataclasses.asdict(recipe.loop),
              "baseline": {"accuracy": base.accuracy, "ci95": base.ci95, "n_eval": base.n} if base else None}
    io.write_json(root.loop_json, result)
    if rows:
        last = root.round(rows[-1]["round"]).root
        report = build_report(last, task=recipe.problems.task_name(), recipe_name=recipe.name, teacher_calls=0,
                              cached_teacher_calls=0, wall_seconds=sum(r["wall_seconds"] for r in rows))
        report["loop"] = result
        write_report(root.root, report, list(recipe.report.formats), data_dir=last)
    return result


def format_table(result: dict[str, Any]) -> str:
    head = f"{'round':>5} {'accuracy':>8} {'95% CI':>16} {'picked':>7} {'added':>6} {'train':>6} {'wall s':>8}  teacher"
    lines = [head, "-" * len(head)]
    if result.get("baseline"):
        b = result["baseline"]
        lo, hi = b["ci95"]
        lines.append(f"{0:>5} {b['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} "
                     f"{'-':>7} {'-':>6} {'-':>6} {'-':>8}  (untrained student)")
    for r in result["rounds"]:
        lo, hi = r["ci95"]
        lines.append(f"{r['round']:>5} {r['accuracy']:>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} {r['problems_picked']:>7} "
                     f"{r['traces_added']:>6} {r['train_examples']:>6} {r['wall_seconds']:>8.0f}  {r['teacher']}")
    if result.get("stopped"):
        lines.append(f"stopped early: {result['stopped']}")
    return "\n".join(lines)
