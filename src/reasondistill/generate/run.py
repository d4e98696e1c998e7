"""Stage 2, generate: N rationales per problem from a teacher, plus STaR rationalization.

Chain-of-thought samples come first; problems with no correct sample are asked again
with the gold answer as a hint and those traces are marked ``hinted``. Every sample
goes through the content-hash cache, so re-running costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from .. import io
from ..backends import BackendPool
from ..backends.base import Backend, Completion, Request, SamplingParams
from ..backends.cache import SampleCache
from ..backends.sampling import CallCounts, draw
from ..config import GenerateConfig
from ..layout import Layout
from ..logprobs import INDEX, store_traces
from ..models import cache_root
from ..prompts import ANSWER_PREFIX, cot_prompt, rationalize_prompt, teacher_prefix
from ..records import Trace, Problem
from . import pot

STAGE = "generate"


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          stop=tuple(cfg.stop), seed=cfg.seed, top_logprobs=cfg.top_logprobs)


def to_trace(req: Request, comp: Completion, teacher: Backend) -> Trace:
    from ..verifiers.answers import extract_answer

    answer, _ = extract_answer(comp.text, fallback_last_number=False)
    reasoning = comp.text
    cut = comp.text.rfind(ANSWER_PREFIX)
    if cut >= 0:
        reasoning = comp.text[:cut].rstrip()
    kind = "h" if req.hinted else "s"
    return Trace(id=f"{req.problem.id}/{teacher.name}/{kind}{req.sample_idx}", problem_id=req.problem.id,
                 teacher=teacher.name, sample_idx=req.sample_idx, reasoning=reasoning,
                 answer_text=answer or "", raw=comp.text, finish_reason=comp.finish_reason,
                 usage={"prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens},
                 logprobs=comp.logprobs, hinted=req.hinted, style=req.style, meta=dict(comp.meta))


def run(recipe: Any, layout: Layout, *, pool: BackendPool | None = None) -> dict:
    """Write the traces (and the top-k logprob store when ``generate.top_logprobs > 0``) for the
    training problems. ``pool`` shares the teacher with later stages (the caller closes it);
    without one the teacher is built here and closed at the end.
    The manifest's ``outputs`` count the samples drawn and served from the cache this time."""
    from ..verifiers import score_text

    teacher_cfg, gen_cfg, verify_cfg = recipe.teacher, recipe.generate, recipe.verify
    problems_path, traces_path = layout.train_problems, layout.traces
    out_dir = traces_path.parent
    # where the samples are drawn (executor, ray) changes none of them: not part of the stage's identity
    gen_key = {k: v for k, v in dataclasses.asdict(gen_cfg).items() if k not in ("executor", "ray")}
    config = {"teacher": dataclasses.asdict(teacher_cfg), "generate": gen_key,
              "verify": dataclasses.asdict(verify_cfg)}

    def body() -> dict:
        problems = io.read_records(problems_path, Problem)
        owned = pool or BackendPool()
        if gen_cfg.executor == "ray":  # replicas on a Ray cluster; this process still writes cache and traces
            from ..backends.ray_pool import RayReplicas

            backend = RayReplicas(teacher_cfg, gen_cfg.ray)
        else:
            backend = owned.get(teacher_cfg)
        try:
            cache = SampleCache(gen_cfg.cache_dir or cache_root() / "samples", backend.identity)
            sampling = sampling_params(gen_cfg)
            prefix = teacher_prefix(gen_cfg.prompt, teacher_cfg.backend, problems)
            style = gen_cfg.prompt.style
            reqs = [Request(p, tuple(prefix + [{"role": "user", "content": cot_prompt(p, gen_cfg.prompt)}]), i,
                            style=style) for p in problems for i in range(gen_cfg.samples)]
            comps, counts = draw(backend, reqs, sampling, cache, desc=f"generate ({backend.name})")
            if style == "pot":  # program of thought: run each program in the sandbox (generate/pot.py)
                comps, programs = pot.execute(comps, gen_cfg.sandbox)
            traces = [to_trace(r, c, backend) for r, c in zip(reqs, comps)]
            by_problem = {p.id: p for p in problems}
            solved = {t.problem_id for t in traces if score_text(by_problem[t.problem_id], t.raw, verify_cfg).passed}
            n_hinted = 0
            if gen_cfg.rationalize:
                # a problem without a gold answer has no hint to give
                failed = [p for p in problems if p.id not in solved and p.answer.strip()]
                hreqs = [Request(p, tuple(prefix + [{"role": "user", "content": rationalize_prompt(p, gen_cfg.prompt)}]),
                                 gen_cfg.samples + j, hinted=True, style=style) for p in failed
                         for j in range(gen_cfg.rationalize_samples)]
                hcomps, hcounts = draw(backend, hreqs, sampling, cache, desc="rationalize (STaR)")
                counts.add(hcounts)
                if style == "pot":
                    hcomps, hprograms = pot.execute(hcomps, gen_cfg.sandbox)
                    programs["programs"] += hprograms["programs"]
                    programs["outcomes"] = dict(Counter(programs["outcomes"]) + Counter(hprograms["outcomes"]))
                traces += [to_trace(r, c, backend) for r, c in zip(hreqs, hcomps)]
                n_hinted = len(hreqs)
            vocab = backend.vocab_size
        finally:
            if gen_cfg.executor == "ray":
                backend.close()
            if pool is None:
                owned.close()
        files = [traces_path.name]
        if gen_cfg.top_logprobs > 0:  # compact binary store for KD; the JSON traces stay small
            store_traces(traces, layout.logprobs, gen_cfg.top_logprobs, vocab_size=vocab)
            traces = [dataclasses.replace(t, logprobs=None) for t in traces]
            files.append(str((layout.logprobs / INDEX).relative_to(out_dir)))
        io.write_jsonl(traces_path, traces)
        outputs = {"files": files, "n_problems": len(problems), "n_traces": len(traces),
                   "n_hinted": n_hinted, "problems_solved_unhinted": len(solved),
                   "teacher_calls": counts.made, "cached_teacher_calls": counts.cached,
                   # failed teacher requests (not cached): > 0 makes the next run retry them; a program
                   # that failed in the sandbox is a finished (failed) trace, not a request to retry
                   "n_errors": sum(t.finish_reason == "error" and "pot" not in t.meta for t in traces),
                   "teacher": backend.name, "teacher_identity": backend.identity, "executor": gen_cfg.executor,
                   "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces)}
        if style == "pot":
            outputs["pot"] = programs
        return outputs

    return io.cached_stage(out_dir, stage=STAGE, config=config, inputs=[problems_path], body=body)


__all__ = ["run", "sampling_params", "to_trace", "CallCounts"]
