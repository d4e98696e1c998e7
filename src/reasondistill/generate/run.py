"""Stage 2, generate: N rationales per problem from a teacher, plus STaR rationalization.

This file only dispatches: it reads the problems (and the student's answers when a mode probes),
builds the modes the recipe switches on (``MODES``; the contract is ``base.py``), runs each teacher's
passes (``passes.py``) and writes the traces, the logprob store and the manifest. What each mode
does lives in its own file: ``cot.py``, ``pot.py``, ``star.py``, ``ssb.py``, ``tailored.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .. import io
from ..backends import BackendPool
from ..backends.cache import SampleCache, cache_identity
from ..backends.sampling import CallCounts, failure_summary, over_context
from ..config import GenerateConfig
from ..errors import ConfigError, ServiceError
from ..layout import Layout
from ..logprobs import INDEX, store_traces
from ..models import cache_root
from ..prompts import teacher_prefix
from ..records import Problem, Trace
from ..registry import check, load
from . import student_answers
from .base import Mode, Sampling, sampling_params, to_trace
from .passes import TeacherShare, sample

STAGE = "generate"
log = logging.getLogger(__name__)


def modes_for(cfg: GenerateConfig) -> list[Mode]:
    """The modes ``cfg`` switches on, in table order; a name in ``generate.modes`` that is not a row,
    or that has an option of its own, is a :class:`ConfigError`."""
    from . import MODES

    for name in cfg.modes:
        cls = load(MODES[check(MODES, name, "generation mode (generate.modes)")])
        if cls.switch:
            raise ConfigError(f"generate.modes: '{name}' is switched on by {cls.switch}, not by generate.modes")
    return [m for target in MODES.values() if (m := load(target).from_config(cfg)) is not None]


def _stage_config(recipe: Any) -> dict:
    """What the stage's outputs depend on; where the samples are drawn (executor, ray) changes none of
    them, and an empty ``generate.modes`` stays out so runs from before it existed still resume."""
    drop = ("executor", "ray") + (() if recipe.generate.modes else ("modes",))
    gen_key = {k: v for k, v in dataclasses.asdict(recipe.generate).items() if k not in drop}
    teacher = ([dataclasses.asdict(t) for t in recipe.teachers()] if recipe.multi_teacher
               else dataclasses.asdict(recipe.teacher))
    return {"teacher": teacher, "generate": gen_key, "verify": dataclasses.asdict(recipe.verify)}


def _share(recipe: Any, tcfg: Any, backend: Any, problems: list[Problem], modes: list[Mode]) -> TeacherShare:
    """One teacher's passes over the problems its route admits."""
    gen_cfg, multi = recipe.generate, recipe.multi_teacher
    identity = cache_identity(tcfg, backend.identity)
    ctx = Sampling(cfg=gen_cfg, verify=recipe.verify, backend=backend,
                   problems=[p for p in problems if tcfg.route.admits(p)] if multi else problems,
                   all_problems=problems, prefix=teacher_prefix(gen_cfg.prompt, tcfg.backend, problems),
                   cache=SampleCache(gen_cfg.cache_dir or cache_root() / "samples", identity), identity=identity,
                   samples=getattr(tcfg, "samples", None) or gen_cfg.samples, name=getattr(tcfg, "name", "") or None)
    return sample(ctx, modes)


def _sample_all(recipe: Any, problems: list[Problem], modes: list[Mode], pool: BackendPool | None
                ) -> tuple[list[TeacherShare], list[str]]:
    """Every teacher's share, in list order, and the names the manifest gives them."""
    owned = pool or BackendPool()
    shares: list[TeacherShare] = []
    names: list[str] = []
    try:
        for tcfg in recipe.teachers():
            if recipe.generate.executor == "ray":  # replicas on a Ray cluster; this process still writes cache and traces
                from ..backends.ray_pool import RayReplicas

                with RayReplicas(tcfg, recipe.generate.ray) as backend:
                    shares.append(_share(recipe, tcfg, backend, problems, modes))
            else:
                backend = owned.get(tcfg)
                shares.append(_share(recipe, tcfg, backend, problems, modes))
            names.append(tcfg.name if recipe.multi_teacher else backend.name)
    finally:
        if pool is None:
            owned.close()
    return shares, names


def _failed_requests(traces: list[Trace], modes: list[Mode]) -> list[str]:
    """The errors of failed teacher requests (not cached: > 0 makes the next run retry them); a
    trace a mode settled (a program that failed in the sandbox) is finished, not retried. All of
    them failed is a :class:`ServiceError`: nothing to verify, curate or train on, nothing written."""
    errors = [t.meta.get("error", "") for t in traces
              if t.finish_reason == "error" and not any(m.settled(t) for m in modes)]
    if errors and len(errors) == len(traces):
        raise ServiceError(f"generate: {failure_summary(errors, len(traces))}; nothing was written")
    if errors:
        log.warning("generate: %s; the finished traces are kept and the same command retries the failed ones",
                    failure_summary(errors, len(traces)))
    return errors


def _outputs(recipe: Any, problems: list[Problem], traces: list[Trace], shares: list[TeacherShare],
             names: list[str], errors: list[str], modes: list[Mode]) -> dict[str, Any]:
    counts = CallCounts()
    for share in shares:
        counts.add(share.counts)
    if n_over := sum(over_context(t.meta) for t in traces):
        log.warning("generate: %d prompt(s) longer than the teacher's context (n_over_context in the manifest)",
                    n_over)
    outputs = {"n_problems": len(problems), "n_traces": len(traces), "n_hinted": sum(s.n_hinted for s in shares),
               "problems_solved_unhinted": sum(s.solved for s in shares),
               "teacher_calls": counts.made, "cached_teacher_calls": counts.cached, "n_errors": len(errors),
               "n_over_context": n_over, "teacher": ", ".join(names),
               "teacher_identity": "; ".join(s.identity for s in shares), "executor": recipe.generate.executor,
               "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces)}
    if errors:
        outputs["errors"] = failure_summary(errors, len(traces))
    if recipe.multi_teacher:
        outputs["teachers"] = {name: s.summary() for name, s in zip(names, shares)}
    for mode in modes:
        if (block := mode.outputs(traces)) is not None:
            outputs[mode.name] = block
    return outputs


def run(recipe: Any, layout: Layout, *, pool: BackendPool | None = None) -> dict:
    """Write the traces (and the top-k logprob store when ``generate.top_logprobs > 0``) for the
    training problems. ``pool`` shares the teacher with later stages (the caller closes it);
    without one the teacher is built here and closed at the end.
    With a teacher list, each teacher samples the problems its route admits, in list order, and
    the manifest's ``teachers`` gives each one's counts.
    The manifest's ``outputs`` count the samples drawn and served from the cache this time."""
    gen_cfg = recipe.generate
    modes = modes_for(gen_cfg)
    probes = any(m.probes for m in modes)
    problems_path, traces_path = layout.train_problems, layout.traces
    out_dir = traces_path.parent

    def body() -> dict:
        problems = io.read_records(problems_path, Problem)
        answers = student_answers.read_probe(layout.probe_samples, problems) if probes else {}
        for mode in modes:
            mode.start(problems, answers)
        shares, names = _sample_all(recipe, problems, modes, pool)
        traces = [t for s in shares for t in s.traces]
        errors = _failed_requests(traces, modes)
        files = [traces_path.name]
        if gen_cfg.top_logprobs > 0:  # compact binary store for KD; the JSON traces stay small
            vocab = shares[0].vocab if len({s.vocab for s in shares}) == 1 else None  # teachers of one vocabulary
            store_traces(traces, layout.logprobs, gen_cfg.top_logprobs, vocab_size=vocab)
            traces = [dataclasses.replace(t, logprobs=None) for t in traces]
            files.append(str((layout.logprobs / INDEX).relative_to(out_dir)))
        io.write_jsonl(traces_path, traces)
        files += [str(path.relative_to(out_dir)) for mode in modes for path in mode.write(layout)]
        return {"files": files, **_outputs(recipe, problems, traces, shares, names, errors, modes)}

    inputs = [problems_path, layout.probe_samples] if probes else [problems_path]
    return io.cached_stage(out_dir, stage=STAGE, config=_stage_config(recipe), inputs=inputs, body=body)


__all__ = ["run", "modes_for", "sampling_params", "to_trace", "cache_identity", "CallCounts"]
