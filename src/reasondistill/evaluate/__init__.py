"""Stage 5, evaluate: greedy (and optionally sampled) answers of each model the recipe names
(``eval.models``: the teacher, the student before and after training) on the held-out problems.

``runner.evaluate`` scores one backend; this module decides what each model is (a backend
from the recipe's teacher section, or a student checkpoint on ``eval.student_backend``,
:mod:`.roles`) and how it is asked: a teacher with its few-shot turns, a student under the task
prefix its checkpoint was trained with (``models.task_prefixes``). Aggregates live in
``reasondistill.metrics``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import io, models
from ..backends import BackendPool, backend_class
from ..backends.cache import SampleCache, cache_identity
from ..config import EvalConfig
from ..layout import Layout
from ..prompts import teacher_prefix
from ..records import Problem
from . import settings
from .roles import student_config
from .runner import eval_config, evaluate

__all__ = ["run", "evaluate", "evaluate_model", "evaluate_teacher"]


def run(recipe: Any, layout: Layout, *, pool: BackendPool | None = None) -> dict[str, dict]:
    """Evaluate every model of ``recipe.eval.models``; ``{model: manifest}``. Finished
    evaluations are recognised before any model loads."""
    out: dict[str, dict] = {}
    owned = pool or BackendPool()
    try:
        for name in recipe.eval.models:
            if name == "teacher":
                out[name] = evaluate_teacher(recipe, layout, owned)
            else:
                spec = recipe.train.student if name == "student_before" else str(layout.checkpoint)
                out[name] = evaluate_model(recipe, spec, name, layout)
    finally:
        if pool is None:
            owned.close()
    return out


def evaluate_teacher(recipe: Any, layout: Layout, pool: BackendPool) -> dict:
    """The recipe's teacher, asked exactly as in generation (few-shot turns included), with its
    samples going through the same content-hash cache. With a teacher list this is the FIRST
    teacher, on every held-out problem (its route is for generation): the report's teacher row
    and its gap recovered use it, so list the reference teacher first."""
    teacher = recipe.teachers()[0]
    problems = io.read_records(layout.train_problems, Problem) if recipe.generate.prompt.few_shot else []
    prefix = teacher_prefix(recipe.generate.prompt, teacher.backend, problems)
    identity = cache_identity(teacher, pool.identity(teacher))
    out = layout.eval_dir("teacher")
    config = eval_config(recipe.eval, recipe.verify, "teacher", identity, prefix)
    if (done := io.completed_manifest(out, config, io.hash_inputs([layout.eval_problems], out))) is not None:
        return {**done, "this_run": {"skipped": True}}
    backend = pool.get(teacher)
    cache = SampleCache(recipe.generate.cache_dir or models.cache_root() / "samples",
                        cache_identity(teacher, backend.identity))
    info = model_info("teacher", identity, backend, teacher)
    return evaluate(recipe.eval, recipe.verify, backend, layout.eval_problems, out, model_name="teacher",
                    prompt_cfg=recipe.generate.prompt, cache=cache, prefix=prefix, identity=identity,
                    model_info=info)


def evaluate_model(recipe: Any, spec: str, name: str, layout: Layout) -> dict:
    """A student (model folder, ``.gguf``, packaged name; a served model's name on a served backend)
    evaluated greedily on ``eval.student_backend`` into ``layout.eval_dir(name)``; skipped (no load)
    when already done."""
    cfg = student_config(recipe, spec)
    local = backend_class(cfg.backend).local_weights
    # asked the way it was trained: a multi-task checkpoint's prefix (a served model has no checkpoint here)
    prefixes = models.task_prefixes(Path(spec).expanduser()) if local else None
    task_prefix = prefixes.get(recipe.eval.task) if prefixes else None
    out = layout.eval_dir(name)
    with BackendPool() as pool:
        # on the default backend keyed on the checkpoint's content identity alone, as before a student could
        # run on another backend (those evaluations are still recognised); elsewhere the backend's identity
        default = cfg.backend == EvalConfig.student_backend
        identity = models.resolve(spec).identity if default else pool.identity(cfg)
        config = eval_config(recipe.eval, recipe.verify, name, identity, task_prefix=task_prefix)
        if (done := io.completed_manifest(out, config, io.hash_inputs([layout.eval_problems], out))) is not None:
            return {**done, "this_run": {"skipped": True}}
        backend = pool.get(cfg)
        # answers go through the sample cache too, so a killed evaluation resumes where it stopped
        cache = SampleCache(recipe.generate.cache_dir or models.cache_root() / "samples", backend.identity)
        return evaluate(recipe.eval, recipe.verify, backend, layout.eval_problems, out, model_name=name,
                        prompt_cfg=recipe.generate.prompt, identity=identity, task_prefix=task_prefix,
                        cache=cache, model_info=model_info(name, identity, backend, cfg))


def model_info(name: str, identity: str, backend: Any, cfg: Any) -> dict:
    """The ``model`` group of an evaluation's settings: local weights are hashed; a served model or a
    program has none of its own here, a served one is named with its server."""
    local = backend_class(cfg.backend).local_weights
    info = settings.model_settings(name, identity, backend, spec=cfg.model if local else None,
                                   backend_name=cfg.backend)
    if (base_url := getattr(getattr(backend, "options", None), "base_url", None)) is not None:
        info.update(served_model=cfg.model, base_url=base_url)
    return info
