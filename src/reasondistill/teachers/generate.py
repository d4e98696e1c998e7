"""Stage 2, generate: N rationales per problem from a teacher, plus STaR rationalization.

Chain-of-thought samples come first; problems with no correct sample are asked again
with the gold answer as a hint and those traces are marked ``hinted``. Every sample
goes through the content-hash cache, so re-running costs nothing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from .. import io
from ..config import GenerateConfig, PromptConfig, TeacherConfig, VerifyConfig
from ..errors import ConfigError
from ..records import Problem, Trace
from ..models import cache_root
from .base import Completion, Request, SamplingParams, Teacher
from .cache import SampleCache
from .prompts import ANSWER_PREFIX, cot_prompt, format_answer, rationalize_prompt
from .sampling import CallCounts, draw


def sampling_params(cfg: GenerateConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          stop=tuple(cfg.stop), seed=cfg.seed, top_logprobs=cfg.top_logprobs)


def few_shot_messages(demos: list[Problem], cfg: PromptConfig) -> list[dict[str, str]]:
    """Worked examples as earlier turns: a program solver's rationale where one exists,
    else the dataset's own solution text (e.g. GSM8K), else an error."""
    from .solvers import SOLVERS, get_solver

    messages: list[dict[str, str]] = []
    for p in demos:
        task = p.meta.get("task", "")
        if task in SOLVERS:
            reasoning, answer = get_solver(task)(p)
        elif p.meta.get("solution"):
            reasoning, answer = p.meta["solution"].split("####")[0].strip(), p.answer
        else:
            raise ConfigError(f"few-shot prompting needs worked solutions; problem {p.id} has none "
                              f"(set generate.prompt.few_shot=0)")
        messages += [{"role": "user", "content": cot_prompt(p, cfg)},
                     {"role": "assistant", "content": f"{reasoning}\n{format_answer(answer)}"}]
    return messages


def to_trace(req: Request, comp: Completion, teacher: Teacher) -> Trace:
    from ..verify.answers import extract_answer

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


def run(teacher_cfg: TeacherConfig, gen_cfg: GenerateConfig, verify_cfg: VerifyConfig,
        problems_path: str | Path, out_dir: str | Path, *, teacher: Teacher | None = None) -> dict:
    """Write ``out_dir/traces.jsonl``. Returns the manifest plus ``this_run`` call counts."""
    from ..verify import score_text

    out_dir = Path(out_dir)
    config = {"teacher": dataclasses.asdict(teacher_cfg), "generate": dataclasses.asdict(gen_cfg),
              "verify": dataclasses.asdict(verify_cfg)}
    inputs = io.hash_inputs([problems_path])
    done = io.completed_manifest(out_dir, config, inputs)
    if done:
        return {**done, "this_run": {"teacher_calls": 0, "cached_teacher_calls": done["outputs"]["n_traces"],
                                     "skipped": True}}
    started = time.time()
    problems = io.read_records(problems_path, Problem)
    own = teacher is None
    teacher = teacher or _build(teacher_cfg)
    try:
        cache = SampleCache(gen_cfg.cache_dir or cache_root() / "samples", teacher.identity)
        sampling = sampling_params(gen_cfg)
        prefix = few_shot_messages(problems[: gen_cfg.prompt.few_shot], gen_cfg.prompt) \
            if gen_cfg.prompt.few_shot and teacher_cfg.backend != "program" else []
        reqs = [Request(p, tuple(prefix + [{"role": "user", "content": cot_prompt(p, gen_cfg.prompt)}]), i)
                for p in problems for i in range(gen_cfg.samples)]
        comps, counts = draw(teacher, reqs, sampling, cache, desc=f"generate ({teacher.name})")
        traces = [to_trace(r, c, teacher) for r, c in zip(reqs, comps)]
        by_problem = {p.id: p for p in problems}
        solved = {t.problem_id for t in traces if score_text(by_problem[t.problem_id], t.raw, verify_cfg).passed}
        n_hinted = 0
        if gen_cfg.rationalize:
            failed = [p for p in problems if p.id not in solved]
            hreqs = [Request(p, tuple(prefix + [{"role": "user", "content": rationalize_prompt(p, gen_cfg.prompt)}]),
                             gen_cfg.samples + j, hinted=True) for p in failed
                     for j in range(gen_cfg.rationalize_samples)]
            hcomps, hcounts = draw(teacher, hreqs, sampling, cache, desc="rationalize (STaR)")
            counts.add(hcounts)
            traces += [to_trace(r, c, teacher) for r, c in zip(hreqs, hcomps)]
            n_hinted = len(hreqs)
    finally:
        if own:
            teacher.close()
    files = ["traces.jsonl"]
    if gen_cfg.top_logprobs > 0:  # compact binary store for KD; the JSON traces stay small
        from .logprob_store import store_traces
        vocab = getattr(getattr(teacher, "tokenizer", None), "__len__", lambda: None)()
        store_traces(traces, out_dir / "logprobs", gen_cfg.top_logprobs, vocab_size=vocab)
        traces = [dataclasses.replace(t, logprobs=None) for t in traces]
        files += ["logprobs/index.json"]
    io.write_jsonl(out_dir / "traces.jsonl", traces)
    outputs = {"files": files, "n_problems": len(problems), "n_traces": len(traces),
               "n_hinted": n_hinted, "problems_solved_unhinted": len(solved),
               "teacher_calls": counts.made, "cached_teacher_calls": counts.cached,
               "teacher": teacher.name, "teacher_identity": teacher.identity,
               "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces)}
    manifest = io.write_manifest(out_dir, stage="generate", config=config, inputs=inputs, outputs=outputs,
                                 started=started)
    return {**manifest, "this_run": {"teacher_calls": counts.made, "cached_teacher_calls": counts.cached,
                                     "skipped": False}}


def _build(cfg: TeacherConfig) -> Teacher:
    from . import build_teacher
    return build_teacher(cfg)


__all__ = ["run", "sampling_params", "to_trace", "few_shot_messages", "CallCounts"]
