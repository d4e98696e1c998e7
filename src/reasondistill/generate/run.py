"""Stage 2, generate: N rationales per problem from a teacher, plus STaR rationalization.

Chain-of-thought samples come first; problems with no correct sample are asked again
with the gold answer as a hint and those traces are marked ``hinted``. Every sample
goes through the content-hash cache, so re-running costs nothing. Two switches read the
student's answers on these problems (the probe stage): ``hints: ssb`` asks the problems it got
wrong with the gold answer and its most common wrong answer (``ssb.py``), and ``tailored`` sends
the ones it fails back with its wrong solution (``tailored.py``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .. import io
from ..backends import BackendPool
from ..backends.base import Backend, Completion, Request, SamplingParams
from ..backends.cache import SampleCache, cache_identity
from ..backends.sampling import CallCounts, draw, failure_summary, over_context
from ..config import GenerateConfig
from ..errors import ServiceError
from ..layout import Layout
from ..logprobs import INDEX, store_traces
from ..models import cache_root
from ..prompts import ANSWER_PREFIX, cot_prompt, rationalize_prompt, teacher_prefix
from ..records import Trace, Problem
from . import pot, ssb, student, tailored

STAGE = "generate"
log = logging.getLogger(__name__)


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          stop=tuple(cfg.stop), seed=cfg.seed, top_logprobs=cfg.top_logprobs)


def to_trace(req: Request, comp: Completion, teacher: Backend, name: str | None = None) -> Trace:
    """The trace of one completion; ``name`` (a named teacher's) replaces the backend's name."""
    from ..verifiers.answers import extract_answer

    answer, _ = extract_answer(comp.text, fallback_last_number=False)
    reasoning = comp.text
    cut = comp.text.rfind(ANSWER_PREFIX)
    if cut >= 0:
        reasoning = comp.text[:cut].rstrip()
    kind = "h" if req.hinted else "s"
    name = name or teacher.name
    return Trace(id=f"{req.problem.id}/{name}/{kind}{req.sample_idx}", problem_id=req.problem.id,
                 teacher=name, sample_idx=req.sample_idx, reasoning=reasoning,
                 answer_text=answer or "", raw=comp.text, finish_reason=comp.finish_reason,
                 usage={"prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens},
                 logprobs=comp.logprobs, hinted=req.hinted, style=req.style, meta=dict(comp.meta))


@dataclass
class _Drawn:
    """One teacher's share of the stage: its traces and what they cost."""

    traces: list[Trace]
    counts: CallCounts
    n_problems: int
    n_hinted: int
    solved: int
    vocab: int | None
    identity: str
    programs: dict | None = None
    passed: set[str] = dataclasses.field(default_factory=set)  # ids of traces that verify
    fresh: list[Trace] = dataclasses.field(default_factory=list)  # tailored corrections

    def summary(self) -> dict[str, Any]:
        return {"n_problems": self.n_problems, "n_traces": len(self.traces), "n_hinted": self.n_hinted,
                "problems_solved_unhinted": self.solved, "teacher_calls": self.counts.made,
                "cached_teacher_calls": self.counts.cached, "teacher_identity": self.identity,
                "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in self.traces)}


def _sample_teacher(teacher_cfg: Any, backend: Backend, problems: list[Problem], all_problems: list[Problem],
                    gen_cfg: GenerateConfig, verify_cfg: Any, wrong: dict[str, str],
                    asked: list[tuple[Problem, Any]]) -> _Drawn:
    """Sample ``problems`` from one teacher (``teacher_cfg.samples`` each when it sets it), SSB-hinted
    where ``wrong`` holds the student's wrong answer; rationalize the ones it solved in none of its
    own samples (STaR); then correct the student's failures in ``asked`` (tailored learning)."""
    from ..verifiers import score_text

    name = getattr(teacher_cfg, "name", "") or None
    samples = getattr(teacher_cfg, "samples", None) or gen_cfg.samples
    identity = cache_identity(teacher_cfg, backend.identity)
    cache = SampleCache(gen_cfg.cache_dir or cache_root() / "samples", identity)
    sampling = sampling_params(gen_cfg)
    prefix = teacher_prefix(gen_cfg.prompt, teacher_cfg.backend, all_problems)
    style = gen_cfg.prompt.style
    label = f"{name} ({backend.name})" if name else backend.name

    def ask(content: str) -> tuple[dict[str, str], ...]:
        return tuple(prefix + [{"role": "user", "content": content}])

    reqs = [Request(p, ask(ssb.prompt(p, wrong, gen_cfg.prompt) or cot_prompt(p, gen_cfg.prompt)), i,
                    hinted=p.id in wrong, style=style) for p in problems for i in range(samples)]
    comps, counts = draw(backend, reqs, sampling, cache, desc=f"generate ({label})", identity=identity)
    programs = None
    if style == "pot":  # program of thought: run each program in the sandbox (generate/pot.py)
        comps, programs = pot.execute(comps, gen_cfg.sandbox)
    traces = [ssb.annotate(to_trace(r, c, backend, name), wrong) for r, c in zip(reqs, comps)]
    by_problem = {p.id: p for p in all_problems}
    passed = {t.id for t in traces if score_text(by_problem[t.problem_id], t.raw, verify_cfg).passed}
    solved = {t.problem_id for t in traces if t.id in passed}
    n_hinted = 0
    if gen_cfg.rationalize:
        # a problem without a gold answer has no hint to give
        failed = [p for p in problems if p.id not in solved and p.answer.strip()]
        hreqs = [Request(p, ask(rationalize_prompt(p, gen_cfg.prompt)), samples + j, hinted=True, style=style)
                 for p in failed for j in range(gen_cfg.rationalize_samples)]
        hcomps, hcounts = draw(backend, hreqs, sampling, cache, desc=f"rationalize (STaR, {label})"
                               if name else "rationalize (STaR)", identity=identity)
        counts.add(hcounts)
        if style == "pot":
            hcomps, hprograms = pot.execute(hcomps, gen_cfg.sandbox)
            programs["programs"] += hprograms["programs"]
            programs["outcomes"] = dict(Counter(programs["outcomes"]) + Counter(hprograms["outcomes"]))
        traces += [to_trace(r, c, backend, name) for r, c in zip(hreqs, hcomps)]
        n_hinted = len(hreqs)
    fresh: list[Trace] = []
    if asked:  # the student's failures, back to the teacher with its wrong answer
        routed = {p.id for p in problems}
        first = samples + (gen_cfg.rationalize_samples if gen_cfg.rationalize else 0)
        treqs = [(w, Request(p, ask(tailored.prompt(p, w, gen_cfg)), first + j, hinted=True, style=style))
                 for p, w in asked if p.id in routed for j in range(gen_cfg.tailored_samples)]
        tcomps, tcounts = draw(backend, [r for _, r in treqs], sampling, cache, desc=f"tailored ({label})",
                               identity=identity)
        counts.add(tcounts)
        fresh = [tailored.annotate(to_trace(r, c, backend, name), w) for (w, r), c in zip(treqs, tcomps)]
        passed |= {t.id for t in fresh if score_text(by_problem[t.problem_id], t.raw, verify_cfg).passed}
        traces += fresh
    unhinted_solved = {t.problem_id for t in traces if t.id in passed and not t.hinted}
    return _Drawn(traces, counts, len(problems), n_hinted, len(unhinted_solved), backend.vocab_size, identity,
                  programs, passed, fresh)


def run(recipe: Any, layout: Layout, *, pool: BackendPool | None = None) -> dict:
    """Write the traces (and the top-k logprob store when ``generate.top_logprobs > 0``) for the
    training problems. ``pool`` shares the teacher with later stages (the caller closes it);
    without one the teacher is built here and closed at the end.
    With a teacher list, each teacher samples the problems its route admits, in list order, and
    the manifest's ``teachers`` gives each one's counts.
    The manifest's ``outputs`` count the samples drawn and served from the cache this time."""
    teacher_cfgs, gen_cfg, verify_cfg = recipe.teachers(), recipe.generate, recipe.verify
    multi = recipe.multi_teacher
    problems_path, traces_path = layout.train_problems, layout.traces
    out_dir = traces_path.parent
    # where the samples are drawn (executor, ray) changes none of them: not part of the stage's identity
    gen_key = {k: v for k, v in dataclasses.asdict(gen_cfg).items() if k not in ("executor", "ray")}
    config = {"teacher": [dataclasses.asdict(t) for t in teacher_cfgs] if multi
              else dataclasses.asdict(recipe.teacher),
              "generate": gen_key, "verify": dataclasses.asdict(verify_cfg)}

    def body() -> dict:
        problems = io.read_records(problems_path, Problem)
        owned = pool or BackendPool()
        drawn: list[_Drawn] = []
        names: list[str] = []
        answers = student.read_probe(layout.probe_samples, problems) if gen_cfg.probes else {}
        wrong = ssb.wrong_answers(problems, answers) if gen_cfg.hints == ssb.HINT else {}
        asked = tailored.failed(problems, answers, gen_cfg.probe.fail_below) if gen_cfg.tailored else []
        try:
            for tcfg in teacher_cfgs:
                routed = [p for p in problems if tcfg.route.admits(p)] if multi else problems
                if gen_cfg.executor == "ray":  # replicas on a Ray cluster; this process still writes cache and traces
                    from ..backends.ray_pool import RayReplicas

                    with RayReplicas(tcfg, gen_cfg.ray) as backend:
                        drawn.append(_sample_teacher(tcfg, backend, routed, problems, gen_cfg, verify_cfg, wrong,
                                                     asked))
                else:
                    backend = owned.get(tcfg)
                    drawn.append(_sample_teacher(tcfg, backend, routed, problems, gen_cfg, verify_cfg, wrong, asked))
                names.append(tcfg.name if multi else backend.name)
        finally:
            if pool is None:
                owned.close()
        traces = [t for d in drawn for t in d.traces]
        # failed teacher requests (not cached): > 0 makes the next run retry them; a program that
        # failed in the sandbox is a finished (failed) trace, not a request to retry
        errors = [t.meta.get("error", "") for t in traces if t.finish_reason == "error" and "pot" not in t.meta]
        if errors and len(errors) == len(traces):  # nothing to verify, curate or train on: say why, write nothing
            raise ServiceError(f"generate: {failure_summary(errors, len(traces))}; nothing was written")
        if errors:
            log.warning("generate: %s; the finished traces are kept and the same command retries the failed ones",
                        failure_summary(errors, len(traces)))
        if n_over := sum(over_context(t.meta) for t in traces):
            log.warning("generate: %d prompt(s) longer than the teacher's context (n_over_context in the manifest)",
                        n_over)
        counts = CallCounts()
        for d in drawn:
            counts.add(d.counts)
        files = [traces_path.name]
        if gen_cfg.top_logprobs > 0:  # compact binary store for KD; the JSON traces stay small
            vocab = drawn[0].vocab if len({d.vocab for d in drawn}) == 1 else None  # teachers of one vocabulary
            store_traces(traces, layout.logprobs, gen_cfg.top_logprobs, vocab_size=vocab)
            traces = [dataclasses.replace(t, logprobs=None) for t in traces]
            files.append(str((layout.logprobs / INDEX).relative_to(out_dir)))
        io.write_jsonl(traces_path, traces)
        if gen_cfg.tailored:
            fresh = [t for d in drawn for t in d.fresh]
            io.write_jsonl(layout.student_traces, [
                tailored.student_trace(p, w, gen_cfg.probe.model, [t.id for t in fresh if t.problem_id == p.id])
                for p, w in asked])
            files.append(str(layout.student_traces.relative_to(out_dir)))
        outputs = {"files": files, "n_problems": len(problems), "n_traces": len(traces),
                   "n_hinted": sum(d.n_hinted for d in drawn),
                   "problems_solved_unhinted": sum(d.solved for d in drawn),
                   "teacher_calls": counts.made, "cached_teacher_calls": counts.cached,
                   "n_errors": len(errors),
                   "n_over_context": n_over,
                   "teacher": ", ".join(names), "teacher_identity": "; ".join(d.identity for d in drawn),
                   "executor": gen_cfg.executor,
                   "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces)}
        if errors:
            outputs["errors"] = failure_summary(errors, len(traces))
        if multi:
            outputs["teachers"] = {name: d.summary() for name, d in zip(names, drawn)}
        if gen_cfg.prompt.style == "pot":
            programs = dict(drawn[0].programs)
            for d in drawn[1:]:
                programs["programs"] += d.programs["programs"]
                programs["outcomes"] = dict(Counter(programs["outcomes"]) + Counter(d.programs["outcomes"]))
            outputs["pot"] = programs
        if gen_cfg.hints == ssb.HINT:
            outputs["ssb"] = {"problems_probed": sum(bool(a.samples) for a in answers.values()),
                              "with_wrong_answer": len(wrong),
                              "hinted_traces": sum(t.meta.get("hint") == ssb.HINT for t in traces)}
        if gen_cfg.tailored:
            passed = set().union(*(d.passed for d in drawn))
            outputs["tailored"] = tailored.counts(answers, asked, fresh, {t.id for t in fresh if t.id in passed})
        return outputs

    inputs = [problems_path, layout.probe_samples] if gen_cfg.probes else [problems_path]
    return io.cached_stage(out_dir, stage=STAGE, config=config, inputs=inputs, body=body)


__all__ = ["run", "sampling_params", "to_trace", "cache_identity", "CallCounts"]
