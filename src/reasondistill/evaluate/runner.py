"""Stage 5, evaluate: greedy (and optionally sampled) answers on held-out problems.

Any :class:`~reasondistill.backends.base.Backend` can be evaluated: the teacher
itself, the student before training, the student after. Per-sample scores go to
``samples.jsonl``; aggregation (accuracy with a Wilson CI, pass@k, maj@k) happens in
:mod:`reasondistill.metrics`. The greedy pass stops each answer at the end of its ``Answer:`` line
where that line is what the verifier reads (:func:`answer_line_format`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from .. import io
from ..config import EvalConfig, PromptConfig, VerifyConfig
from ..layout import EVAL_FILES
from ..records import EvalSample, EvalSummary, Problem
from ..backends.base import Completion, Request, SamplingParams, Backend
from ..backends.cache import SampleCache
from ..prompts import ANSWER_PREFIX, student_messages, template_text, with_task_prefix
from ..backends.sampling import CallCounts, draw, failure_summary, over_context
from ..errors import ServiceError
from .. import metrics
from . import audit, settings

log = logging.getLogger(__name__)


def evaluate(cfg: EvalConfig, verify_cfg: VerifyConfig, teacher: Backend, problems_path: str | Path,
             out_dir: str | Path, *, model_name: str, prompt_cfg: PromptConfig | None = None,
        cache: SampleCache | None = None, identity: str | None = None,
        prefix: list[dict[str, str]] | None = None, task_prefix: str | None = None,
        model_info: dict | None = None) -> dict:
    """Evaluate the backend ``teacher`` on ``problems_path``; writes samples, summary and manifest.

    ``identity`` (the model's content identity) makes a finished evaluation resumable;
    ``prefix`` holds earlier turns (a teacher's few-shot examples) put before each prompt;
    ``task_prefix`` goes before the question itself (a multi-task student's ``[rationale] ``);
    ``model_info`` is the ``model`` group of the summary's settings (:mod:`.settings`; default:
    the backend's name and identity). The summary also gets the checker audit's counts (:mod:`.audit`).
    """
    from ..grading import score_text

    out_dir = Path(out_dir)
    config = eval_config(cfg, verify_cfg, model_name, identity or teacher.identity, prefix, task_prefix)

    def body() -> dict:
        problems = io.read_records(problems_path, Problem)
        problems = problems[: cfg.n] if cfg.n else problems
        counts = CallCounts()
        plans = [(0, SamplingParams(temperature=0.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed))]
        if cfg.samples > 0:
            sampled = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p,
                                     max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
            plans += [(i, sampled) for i in range(1, cfg.samples + 1)]
        # one run per seed: each is its own pass over every problem (``_group`` keeps them apart)
        plans += [(i, SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                     seed=cfg.seed + i)) for i in range(1, cfg.seeds + 1)]
        samples: list[EvalSample] = []
        errors: list[str] = []
        n_over = 0
        for idx, sampling in _group(plans):
            reqs = [Request(p, tuple((prefix or []) + with_task_prefix(student_messages(p, prompt_cfg), task_prefix)),
                            i) for p in problems for i in idx]
            desc = f"eval {model_name}" + (" (sampled)" if idx[0] else "")
            if sampling.temperature <= 0:  # greedy: stop after the answer line where that is the format
                stops = [answer_line_format(r.problem, verify_cfg, prompt_cfg) for r in reqs]
                comps, c = _draw_split(teacher, reqs, sampling, stops, cache, desc)
            else:
                comps, c = draw(teacher, reqs, sampling, cache, desc=desc)
            counts.add(c)
            errors += [comp.meta.get("error", "") for comp in comps if comp.finish_reason == "error"]
            n_over += sum(over_context(comp.meta) for comp in comps)
            for req, comp in zip(reqs, comps):
                s = score_text(req.problem, comp.text, verify_cfg, truncated=comp.finish_reason == "length")
                samples.append(EvalSample(problem_id=req.problem.id, model=model_name, sample_idx=req.sample_idx,
                                          score=s.score, passed=s.passed, extracted=s.extracted,
                                          formatted=s.formatted, completion_tokens=comp.completion_tokens,
                                          text=comp.text, finish_reason=comp.finish_reason))
        if errors and len(errors) == len(samples):  # a score of 0 on every problem would be a lie: fail, say why
            raise ServiceError(f"evaluate {model_name}: {failure_summary(errors, len(samples), 'requests')}; "
                               f"nothing was written")
        if errors:
            log.warning("evaluate %s: %s (scored 0); the same command retries them", model_name,
                        failure_summary(errors, len(samples), "requests"))
        if n_over:
            log.warning("evaluate %s: %d prompt(s) longer than the model's context (n_over_context in the summary)",
                        model_name, n_over)
        dtype = model_dtype(teacher)
        info = model_info or settings.model_settings(model_name, identity or teacher.identity, teacher)
        rows, audit_counts = audit.audit(problems, samples, verify_cfg)
        summary = EvalSummary.from_json(metrics.summarize(samples, model_name)).with_extra(
            n_errors=len(errors), n_over_context=n_over,
            settings=settings.build(cfg, verify_cfg, prompt_cfg, problems_path, problems, model=info, prefix=prefix,
                                    task_prefix=task_prefix, dtype=dtype, device=settings.device_of(teacher)),
            audit=audit_counts)
        io.write_jsonl(out_dir / EVAL_FILES["samples"], samples)
        io.write_jsonl(out_dir / EVAL_FILES["audit"], rows)
        io.write_json(out_dir / EVAL_FILES["summary"], summary.to_json())
        return {"files": [EVAL_FILES["samples"], EVAL_FILES["summary"], EVAL_FILES["audit"]], "n": len(problems),
                "accuracy": summary.accuracy, "ci95": summary.ci95, "calls": counts.made,
                "cached": counts.cached, "dtype": dtype,
                # failed requests score 0 and are not cached: > 0 makes the next run retry them
                "n_errors": len(errors), "n_over_context": n_over,
                **({"errors": failure_summary(errors, len(samples), "requests")} if errors else {})}

    return io.cached_stage(out_dir, stage="evaluate", config=config, inputs=[problems_path], body=body)


def model_dtype(teacher: Backend) -> str | None:
    """The dtype the evaluated model's weights are in (``None`` for a model-less teacher)."""
    dtype = getattr(getattr(teacher, "model", None), "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else None


def eval_config(cfg: EvalConfig, verify_cfg: VerifyConfig, model_name: str, identity: str,
                prefix: list[dict[str, str]] | None = None, task_prefix: str | None = None,
        model_info: dict | None = None) -> dict:
    """What a finished evaluation is keyed on (used to skip reloading a model for nothing)."""
    config = {"eval": settings.config_dict(cfg), "verify": dataclasses.asdict(verify_cfg),
              "model": model_name, "identity": identity, "prefix": prefix or []}
    if task_prefix:
        config["task_prefix"] = task_prefix
    return config


def answer_line_format(problem: Problem, verify_cfg: VerifyConfig, prompt_cfg: PromptConfig | None) -> bool:
    """Whether ``problem``'s answer is its ``Answer: X`` line: the prompt asks for that line and the
    verifier reads it first (an ``AnswerVerifier``). A program's output, or a verifier of its own, is not."""
    from ..grading import get_verifier
    from ..grading.base import AnswerVerifier

    return (ANSWER_PREFIX in template_text(prompt_cfg or PromptConfig(), problem)
            and isinstance(get_verifier(verify_cfg.verifier, problem), AnswerVerifier))


def _draw_split(teacher: Backend, reqs: list[Request], sampling: SamplingParams, stops: list[bool],
                cache: SampleCache | None, desc: str) -> tuple[list[Completion], CallCounts]:
    """``draw`` with ``stop_at_answer`` on for the requests ``stops`` marks, off for the rest (one
    draw per group, results in input order)."""
    groups = {flag: [i for i, s in enumerate(stops) if s == flag] for flag in (True, False)}
    out: list[Completion | None] = [None] * len(reqs)
    counts = CallCounts()
    for flag, idx in groups.items():
        if idx:
            comps, c = draw(teacher, [reqs[i] for i in idx], dataclasses.replace(sampling, stop_at_answer=flag),
                            cache, desc=desc)
            counts.add(c)
            for i, comp in zip(idx, comps):
                out[i] = comp
    return [c for c in out if c is not None], counts


def _group(plans: list[tuple[int, SamplingParams]]) -> list[tuple[list[int], SamplingParams]]:
    """Greedy index 0 alone; sampled indices together (one pass, shared parameters)."""
    out: list[tuple[list[int], SamplingParams]] = []
    for i, sp in plans:
        if out and out[-1][1] == sp:
            out[-1][0].append(i)
        else:
            out.append(([i], sp))
    return out
