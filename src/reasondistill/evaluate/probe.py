"""The probe stage: the student answers the TRAINING problems before generation.

SSB hints (``generate.hints: ssb``) need each problem's most common wrong student answer, and
tailored learning (``generate.tailored``) the problems the student fails; both read the
per-sample results this stage writes (``probe/samples.jsonl``, :class:`EvalSample` records).
It is an evaluation like any other (:func:`runner.evaluate`: greedy plus ``probe.samples``
sampled answers, through the sample cache), of ``train.student`` or of the teacher itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import io, models
from ..backends import BackendPool
from ..backends.cache import SampleCache
from ..config import EvalConfig, GenerateConfig, BackendConfig, check_choice
from ..errors import ConfigError
from ..layout import Layout
from . import runner
from .roles import student_config

STAGE = "probe"


@dataclass
class ProbeConfig:
    """``generate.probe``: the student answering the training problems before generation (its greedy
    answer plus ``samples`` sampled ones, through the evaluation runner and the sample cache), for SSB
    hints (``generate.hints: ssb``) and tailored learning (``generate.tailored``)."""

    model: str = "student"  # student (train.student, on eval.student_backend) | teacher (the recipe's teacher itself)
    samples: int = 4  # sampled answers per problem, besides the greedy one
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    fail_below: float = 0.5  # tailored: a problem the student passes less often than this counts as failed

    def __post_init__(self) -> None:
        check_choice("generate.probe.model", self.model, ("student", "teacher"))
        if self.samples < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("generate.probe: samples >= 0, max_new_tokens >= 1 and batch_size >= 1")
        if not 0 < self.fail_below <= 1:
            raise ConfigError("generate.probe.fail_below must be in (0, 1]")


def eval_config(cfg: ProbeConfig) -> EvalConfig:
    """The probe's sampling as an evaluation config (every training problem)."""
    return EvalConfig(models=[], n=None, samples=cfg.samples, temperature=cfg.temperature, top_p=cfg.top_p,
                      max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, dtype=cfg.dtype,
                      device=cfg.device, seed=cfg.seed)


def backend_config(recipe: Any) -> BackendConfig:
    """The backend the probe asks: the recipe's teacher, or ``train.student`` on ``eval.student_backend``
    (also the key a test serves a scripted student under, with ``BackendPool.add``)."""
    probe = recipe.generate.probe
    if probe.model == "teacher":
        return recipe.teacher
    return student_config(recipe, recipe.train.student, dtype=probe.dtype, device=probe.device,
                          batch_size=probe.batch_size)


def run(recipe: Any, layout: Layout, *, pool: BackendPool | None = None) -> dict:
    """Write ``probe/samples.jsonl`` and its manifest (skipped when up to date, before any load)."""
    gen: GenerateConfig = recipe.generate
    owned = pool or BackendPool()
    out = layout.stage_dir(STAGE)
    try:
        cfg = backend_config(recipe)
        identity = owned.identity(cfg)
        key = runner.eval_config(eval_config(gen.probe), recipe.verify, gen.probe.model, identity)
        if (done := io.completed_manifest(out, key, io.hash_inputs([layout.train_problems], out))) is not None:
            return {**done, "this_run": {"skipped": True}}
        backend = owned.get(cfg)
        cache = SampleCache(gen.cache_dir or models.cache_root() / "samples", backend.identity)
        return runner.evaluate(eval_config(gen.probe), recipe.verify, backend, layout.train_problems, out,
                               model_name=gen.probe.model, prompt_cfg=gen.prompt, cache=cache, identity=identity)
    finally:
        if pool is None:
            owned.close()
        elif gen.probe.model == "student":  # not needed again: free its memory before the teacher generates
            owned.release(backend_config(recipe))
