"""``reasondistill run``: chain the stages over one run folder.

problems -> generate -> verify -> curate -> train -> evaluate -> report. Each stage
skips itself when its manifest shows it already finished on the same config and
inputs, so a crashed or interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import time
from pathlib import Path

from . import io
from .config import Recipe, dump_recipe
from .models import cache_root

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class RunPaths:
    root: Path

    @property
    def problems(self) -> Path:
        return self.root / "problems"

    @property
    def generate(self) -> Path:
        return self.root / "generate"

    @property
    def verify(self) -> Path:
        return self.root / "verify"

    @property
    def curate(self) -> Path:
        return self.root / "curate"

    @property
    def train(self) -> Path:
        return self.root / "train"

    def eval(self, model: str) -> Path:
        return self.root / "eval" / model


def task_name(recipe: Recipe) -> str:
    p = recipe.problems
    return p.task if p.source == "reasoning_gym" else Path(p.source).stem


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def run(recipe: Recipe, out_dir: str | Path) -> dict:
    """Run every stage of ``recipe`` into ``out_dir`` and return the report dict."""
    from . import report
    from .evaluate.runner import run as eval_run
    from .teachers.cache import SampleCache
    from .teachers.generate import few_shot_messages
    from .train import sft

    started = time.time()
    paths = RunPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    io.write_json(paths.root / "versions.json", io.library_versions())

    train_problems, eval_problems = paths.problems / "train.jsonl", paths.problems / "eval.jsonl"
    teacher = None
    try:
        teacher, calls = prepare_data(recipe, paths)
        log.info("[5/7] train %s (%s)", recipe.train.method, "LoRA" if recipe.train.lora else "full")
        train_student(recipe, paths)

        log.info("[6/7] evaluate")
        if "teacher" in recipe.eval.models:
            prefix = []
            if recipe.generate.prompt.few_shot and recipe.teacher.backend != "program":
                from .io import read_records
                from .records import Problem
                demos = read_records(train_problems, Problem)[: recipe.generate.prompt.few_shot]
                prefix = few_shot_messages(demos, recipe.generate.prompt)
            cache = SampleCache(recipe.generate.cache_dir or cache_root() / "samples", teacher.identity)
            res = eval_run(recipe.eval, recipe.verify, teacher, eval_problems, paths.eval("teacher"),
                           model_name="teacher", prompt_cfg=recipe.generate.prompt, cache=cache, prefix=prefix)
            calls["made"] += res["this_run"]["calls"]
            calls["cached"] += res["this_run"]["cached"]
    finally:
        if teacher is not None:
            teacher.close()
    for name in ("student_before", "student_after"):
        if name in recipe.eval.models:
            spec = recipe.train.student if name == "student_before" else str(paths.train / sft.MODEL_DIR)
            evaluate_model(recipe, spec, name, eval_problems, paths.eval(name),
                           task_prefix=student_task_prefix(recipe) if name == "student_after" else None)

    log.info("[7/7] report")
    result = report.build_report(paths.root, task=task_name(recipe), teacher_calls=calls["made"],
                                 cached_teacher_calls=calls["cached"],
                                 wall_seconds=round(time.time() - started, 1), recipe_name=recipe.name)
    result["peak_rss_mb"] = peak_rss_mb()
    report.write_report(paths.root, result, recipe.report.formats)
    return result


def prepare_data(recipe: Recipe, paths: RunPaths):
    """Stages 1-4 (problems, generate, verify, curate). Returns ``(teacher, call counts)``;
    the caller closes the teacher (it is reused to evaluate the teacher itself)."""
    from . import problems, verify
    from . import teachers as teacher_stage
    from .curate import run as curate_run

    log.info("[1/7] problems -> %s", paths.problems)
    problems.run(recipe.problems, paths.problems)
    train_problems = paths.problems / "train.jsonl"
    log.info("[2/7] generate (%s teacher)", recipe.teacher.backend)
    teacher = teacher_stage.build_teacher(recipe.teacher)
    try:
        gen = teacher_stage.run(recipe.teacher, recipe.generate, recipe.verify, train_problems, paths.generate,
                                teacher=teacher)
        log.info("[3/7] verify")
        verify.run(recipe.verify, train_problems, paths.generate / "traces.jsonl", paths.verify)
        log.info("[4/7] curate")
        curate_run(recipe.curate, train_problems, paths.generate / "traces.jsonl",
                   paths.verify / "verdicts.jsonl", paths.curate, prompt_cfg=recipe.generate.prompt)
    except BaseException:
        teacher.close()
        raise
    return teacher, dict(made=gen["this_run"]["teacher_calls"], cached=gen["this_run"]["cached_teacher_calls"])


def train_student(recipe: Recipe, paths: RunPaths, out: Path | None = None) -> dict:
    """Feed the objective the input it trains on: curated traces, preference pairs, or problems."""
    from .train import objective, run_objective

    obj = objective(recipe.train.method)
    if obj.data == "pairs":
        from .curate.pairs import build_pairs
        data = paths.root / "pairs" / "pairs.jsonl"
        build_pairs(paths.curate / "train.jsonl", paths.curate / "negatives.jsonl", data, seed=recipe.train.seed)
    elif obj.data == "problems":
        data = paths.problems / "train.jsonl"
    else:
        data = paths.curate / "train.jsonl"
    logprobs = paths.generate / "logprobs" if obj.needs_logprobs else None
    return run_objective(recipe.train, data, out or paths.train, logprobs=logprobs, verify_cfg=recipe.verify,
                         prompt_cfg=recipe.generate.prompt)


def student_task_prefix(recipe: Recipe) -> str | None:
    """The prefix a trained student is asked under: a multi-task student answers the task its
    prompt names (``eval.task``), so it is evaluated with that task's prefix; others with none."""
    if recipe.train.method != "multitask":
        return None
    from .train import objective_config
    from .train.multitask import eval_prefix

    return eval_prefix(objective_config("multitask", recipe.train.objective), recipe.eval.task)


def evaluate_model(recipe: Recipe, spec: str, name: str, problems_path: Path, out: Path,
                   task_prefix: str | None = None) -> dict:
    """Evaluate a student checkpoint (or any model spec); skipped when already done."""
    from . import models
    from .teachers.transformers import TransformersTeacher

    ident = models.resolve(spec).identity
    from .evaluate.runner import eval_config
    from .evaluate.runner import run as eval_run

    config = eval_config(recipe.eval, recipe.verify, name, ident, task_prefix=task_prefix)
    done = io.completed_manifest(out, config, io.hash_inputs([problems_path]))
    if done:
        return done
    model = TransformersTeacher(spec, dtype=recipe.eval.dtype, device=recipe.eval.device,
                                batch_size=recipe.eval.batch_size, trust_remote_code=recipe.train.trust_remote_code,
                                name=name)
    try:
        return eval_run(recipe.eval, recipe.verify, model, problems_path, out, model_name=name,
                        prompt_cfg=recipe.generate.prompt, identity=ident, task_prefix=task_prefix)
    finally:
        model.close()

