"""Curate stage runner: problems + traces + verdicts -> train / negatives / rejected / pass rates.

Every trace ends up in exactly one of ``train.jsonl`` (kept: correct, after the per-trace and
per-problem policies), ``negatives.jsonl`` (verified incorrect, not truncated) or
``rejected.jsonl`` (``{trace_id, problem_id, reason, trace}``). ``pass_rates.jsonl`` has one row per
problem with the teacher's pass rate over its UNHINTED samples (hinted STaR traces saw the
answer); problems without unhinted samples get ``pass_rate: null``. When a policy selects problems
(``curate.pass_rate_band``, ``curate.decontaminate``), ``selected_problems.jsonl`` holds the
problems it keeps, as ``Problem`` records (usable as GRPO prompts).

The manifest's outputs add the pass-rate histogram, length statistics (chars and tokens: mean,
median, p90 of every trace, of the correct ones and of the kept ones) and each policy's report.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..config import CurateConfig, PromptConfig
from ..errors import InputError
from ..io import cached_stage, check_problem_ids, index_by_id, line_of, read_records, write_jsonl
from ..layout import Layout
from ..prompts import student_messages
from ..records import Problem, Trace, TrainExample, Verdict, to_dict
from .base import (INCORRECT, NEGATIVES as NEGATIVES_SCOPE, TRAIN as TRAIN_SCOPE, CurateContext, build_policies,
                   dependencies, judge, select_group, split)
from .cap import preference_key
from .stats import length_stats, pass_rate_histogram

log = logging.getLogger(__name__)

STAGE = "curate"


def match_verdicts(traces: dict[str, Trace], verdicts: list[Verdict], traces_path: str | Path,
                   verdicts_path: str | Path) -> dict[str, Verdict]:
    """``{trace_id: verdict}``; unknown, repeated or mismatched ids and missing verdicts are InputErrors."""
    by_trace: dict[str, Verdict] = {}
    for i, v in enumerate(verdicts):
        if v.trace_id not in traces:
            raise InputError(f"verdict for trace {v.trace_id!r}, which is not in {traces_path}",
                             file=verdicts_path, line=line_of(verdicts_path, i), field="trace_id")
        if v.trace_id in by_trace:
            raise InputError(f"second verdict for trace {v.trace_id!r}", file=verdicts_path,
                             line=line_of(verdicts_path, i), field="trace_id")
        if v.problem_id != traces[v.trace_id].problem_id:
            raise InputError(f"verdict says problem {v.problem_id!r} but trace {v.trace_id!r} is for problem "
                             f"{traces[v.trace_id].problem_id!r} in {traces_path}", file=verdicts_path,
                             line=line_of(verdicts_path, i), field="problem_id")
        by_trace[v.trace_id] = v
    for i, trace_id in enumerate(traces):
        if trace_id not in by_trace:
            raise InputError(f"trace {trace_id!r} has no verdict in {verdicts_path} (re-run verify)",
                             file=traces_path, line=line_of(traces_path, i), field="id")
    return by_trace


def example(problem: Problem, trace: Trace, prompt_cfg: PromptConfig,
            notes: dict[str, Any] | None = None) -> TrainExample:
    """TRL conversational prompt-completion: the plain student prompt (never the hint); ``notes``
    (a policy's per-trace fields, e.g. student scores) join the lineage in ``meta``."""
    return TrainExample(
        prompt=student_messages(problem, prompt_cfg),
        completion=[{"role": "assistant", "content": trace.raw.strip()}],
        meta={"problem_id": problem.id, "trace_id": trace.id, "teacher": trace.teacher, "hinted": trace.hinted,
              **(notes or {})},
    )


def rejected_row(trace: Trace, reason: str, notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``rejected.jsonl`` row: the ids and reason, and the whole trace, so a dropped trace can be
    inspected (or re-admitted) without joining files; a policy's per-trace ``notes`` when any."""
    row = {"trace_id": trace.id, "problem_id": trace.problem_id, "reason": reason, "trace": to_dict(trace)}
    if notes:
        row["notes"] = notes
    return row


@dataclasses.dataclass
class Sorted:
    """Where curation put every trace: kept examples, negatives and rejected rows, with per-problem
    pass rates and what was kept (for the counts)."""

    train: list[TrainExample] = dataclasses.field(default_factory=list)
    negatives: list[TrainExample] = dataclasses.field(default_factory=list)
    rejected: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    pass_rates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    kept: list[Trace] = dataclasses.field(default_factory=list)
    problems_with_kept: int = 0

    def counts(self, n_traces: int, n_problems: int) -> dict[str, Any]:
        rates = [r["pass_rate"] for r in self.pass_rates if r["pass_rate"] is not None]
        return {"traces": n_traces, "kept": len(self.train), "kept_hinted": sum(t.hinted for t in self.kept),
                "negatives": len(self.negatives), "rejected": len(self.rejected),
                "dropped": dict(Counter(r["reason"] for r in self.rejected).most_common()),
                "problems": n_problems, "problems_with_kept": self.problems_with_kept,
                "mean_pass_rate": round(sum(rates) / len(rates), 4) if rates else None}


def read_inputs(recipe: Any, layout: Layout) -> CurateContext:
    """Problems, traces and their verdicts, cross-checked (ids, one verdict per trace)."""
    problems_path, traces_path, verdicts_path = layout.train_problems, layout.traces, layout.verdicts
    problems: dict[str, Problem] = index_by_id(read_records(problems_path, Problem), problems_path)
    trace_list = read_records(traces_path, Trace)
    traces: dict[str, Trace] = index_by_id(trace_list, traces_path)
    check_problem_ids(trace_list, problems, traces_path, problems_path)
    verdicts = match_verdicts(traces, read_records(verdicts_path, Verdict), traces_path, verdicts_path)
    return CurateContext(recipe=recipe, layout=layout, problems=problems, traces=trace_list, verdicts=verdicts)


def sort_traces(ctx: CurateContext, policies: list[Any], prompt_cfg: PromptConfig) -> Sorted:
    """Per-trace policies first (correct -> candidates, incorrect -> negative candidates, else
    rejected), then each problem's group policies over its candidates in preference order."""
    verdicts, notes, problems = ctx.verdicts, ctx.trace_notes, ctx.problems
    per_trace, per_group = split(policies)
    position = {t.id: i for i, t in enumerate(ctx.traces)}
    candidates: dict[str, list[Trace]] = defaultdict(list)
    negative_candidates: dict[str, list[Trace]] = defaultdict(list)
    out = Sorted()
    for trace in ctx.traces:
        ok, reason = judge(per_trace, problems[trace.problem_id], trace, verdicts[trace.id])
        if ok:
            candidates[trace.problem_id].append(trace)
        elif reason == INCORRECT:
            negative_candidates[trace.problem_id].append(trace)
        else:
            out.rejected.append(rejected_row(trace, reason, notes.get(trace.id)))
    for pid, problem in problems.items():
        ranked = sorted(candidates.get(pid, []), key=lambda t: preference_key(t, position[t.id]))
        kept, dropped = select_group(per_group, TRAIN_SCOPE, problem, ranked, verdicts)
        negs, neg_dropped = select_group(per_group, NEGATIVES_SCOPE, problem, negative_candidates.get(pid, []),
                                         verdicts)
        out.rejected.extend(rejected_row(t, reason, notes.get(t.id)) for t, reason in dropped + neg_dropped)
        out.train.extend(example(problem, t, prompt_cfg, notes.get(t.id)) for t in kept)
        out.negatives.extend(example(problem, t, prompt_cfg, notes.get(t.id)) for t in negs)
        out.kept += kept
        out.problems_with_kept += bool(kept)
        out.pass_rates.append({**ctx.pass_rate_row(pid), **ctx.problem_notes.get(pid, {})})
    return out


def write_selected(policies: list[Any], problems: dict[str, Problem], path: Path) -> int | None:
    """``selected_problems.jsonl`` when a policy selects problems (how many); else ``None``, and a
    file left by an earlier run with a selection is removed (it would be stale)."""
    selectors = [p for p in policies if hasattr(p, "keeps_problem")]
    if not selectors:
        path.unlink(missing_ok=True)
        return None
    return write_jsonl(path, [p for pid, p in problems.items() if all(s.keeps_problem(pid) for s in selectors)])


def run(recipe: Any, layout: Layout) -> dict:
    """Write the curated files and the manifest; return the manifest (reused when up to date)."""
    cfg: CurateConfig = recipe.curate
    prompt_cfg: PromptConfig = recipe.generate.prompt
    config: dict[str, Any] = {"curate": dataclasses.asdict(cfg), "prompt": dataclasses.asdict(prompt_cfg)}
    templates = [p for p in (prompt_cfg.template, prompt_cfg.rationalize_template) if p]
    outs = {name: layout.path(name) for name in ("curated", "negatives", "rejected", "pass_rates")}
    extra = dependencies(cfg, recipe, layout)
    if extra["config"]:
        config["policies"] = extra["config"]

    def body() -> dict:
        ctx = read_inputs(recipe, layout)
        policies = build_policies(cfg)
        for policy in policies:
            if hasattr(policy, "prepare"):
                policy.prepare(ctx)
        done = sort_traces(ctx, policies, prompt_cfg)
        for name, rows in (("curated", done.train), ("negatives", done.negatives), ("rejected", done.rejected),
                           ("pass_rates", done.pass_rates)):
            write_jsonl(outs[name], rows)
        selected = write_selected(policies, ctx.problems, layout.path("selected_problems"))
        counts = done.counts(len(ctx.traces), len(ctx.problems))
        if not done.train:
            log.warning("curate: no trace was kept (%s); training would have nothing to learn from",
                        counts["dropped"])
        log.info("curate: kept %d traces for %d/%d problems, %d negatives, dropped %s", counts["kept"],
                 done.problems_with_kept, len(ctx.problems), counts["negatives"], counts["dropped"])
        per_trace, per_group = split(policies)
        outputs: dict[str, Any] = {"files": [p.name for p in outs.values()], "counts": counts,
                                   "policies": [p.name for p in per_trace + per_group]}
        if selected is not None:
            outputs["files"].append(layout.path("selected_problems").name)
            outputs["selected_problems"] = selected
        outputs["pass_rate_histogram"] = pass_rate_histogram(r["pass_rate"] for r in done.pass_rates)
        correct = [t for t in ctx.traces if ctx.verdicts[t.id].passed]
        outputs["length"] = length_stats({"traces": ctx.traces, "correct": correct, "kept": done.kept})
        reports = {p.name: p.report() for p in policies if hasattr(p, "report")}
        if reports:
            outputs["policy_reports"] = reports
        return outputs

    return cached_stage(outs["curated"].parent, stage=STAGE, config=config,
                        inputs=[layout.train_problems, layout.traces, layout.verdicts, *templates, *extra["inputs"]],
                        body=body)
