"""Formatting shared by the Markdown and HTML renderings (and the plots) of ``report.json``."""

from __future__ import annotations

from typing import Any

MODELS = ("teacher", "student_before", "student_after")
MODEL_LABELS = {"teacher": "teacher", "student_before": "student (before)", "student_after": "student (after)"}

def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def signed_pts(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def fmt_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


TABLE_HEADER = ["model", "accuracy", "95% CI", "fallback credits", "format rate", "tokens/answer", "n"]


def model_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per evaluated model, cells formatted for display (see ``TABLE_HEADER``)."""
    rows = []
    for model in MODELS:
        s = report.get(model)
        if not s:
            continue
        ci = s.get("ci95") or [None, None]
        tokens = s.get("mean_tokens")
        rows.append([
            MODEL_LABELS[model],
            pct(s.get("accuracy")),
            f"[{pct(ci[0])}, {pct(ci[1])}]",
            _fallback_cell(s),
            pct(s.get("format_rate")),
            "n/a" if tokens is None else f"{tokens:.1f}",
            str(s.get("n", "")),
        ])
    return rows


def _fallback_cell(summary: dict[str, Any]) -> str:
    """How much of an accuracy the last-number fallback credited (answers without an ``Answer:``
    line), so a score built on lenient extraction is visible as such; ``n/a`` for older summaries."""
    k, n = summary.get("fallback_credits"), summary.get("n")
    if not isinstance(k, int) or not n:
        return "n/a"
    return f"{k} ({pct(k / n)})"


def sampled_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """pass@k / maj@k table (header, rows) over the models that have sampled generations."""
    ks: list[str] = []
    for model in MODELS:
        for k in (report.get(model) or {}).get("pass_at_k", {}):
            if k not in ks:
                ks.append(k)
    ks.sort(key=int)
    seeds = any("pass1_sampled" in (report.get(m) or {}) for m in MODELS)
    header = (["model"] + (["sampled pass@1 [95% CI]", "runs"] if seeds else [])
              + [f"pass@{k}" for k in ks] + [f"maj@{k}" for k in ks])
    rows = []
    for model in MODELS:
        s = report.get(model) or {}
        if "pass_at_k" not in s:
            continue
        cells = []
        if seeds:
            p1 = s.get("pass1_sampled") or {}
            ci = p1.get("ci95") or [None, None]
            cells += [f"{pct(p1.get('value'))} [{pct(ci[0])}, {pct(ci[1])}]", str(p1.get("runs", ""))]
        cells += [pct(s["pass_at_k"].get(k)) if k in s["pass_at_k"] else "" for k in ks]
        cells += [pct(s.get("maj_at_k", {}).get(k)) if k in s.get("maj_at_k", {}) else "" for k in ks]
        rows.append([MODEL_LABELS[model]] + cells)
    return header, rows


def audit_lines(report: dict[str, Any]) -> list[str]:
    """One sentence per model whose evaluation was audited with a second checker."""
    lines = []
    for model in MODELS:
        a = (report.get(model) or {}).get("audit")
        if isinstance(a, dict) and "n" in a:
            lines.append(f"{MODEL_LABELS[model]}: the two checkers (math-verify, normalised string match) disagree "
                         f"on {a.get('disagree', 0)} of {a['n']} answers ({a.get('math_only', 0)} accepted only by "
                         f"math-verify, {a.get('exact_only', 0)} only by the string match; eval/{model}/audit.jsonl)"
                         + (f"; {a['fallback_credits']} answers credited by the last-number fallback"
                            if "fallback_credits" in a else ""))
    return lines


def headline(report: dict[str, Any]) -> list[str]:
    """Short sentences on improvement, gap recovered and CI overlap."""
    lines = []
    if report.get("improvement") is not None:
        lines.append(f"Improvement (student after - before): {signed_pts(report['improvement'])}"
                     + _interval(report.get("improvement_interval"), signed=True))
    if report.get("gap_recovered") is not None:
        lines.append(f"Teacher-student gap recovered: {pct(report['gap_recovered'])}"
                     + _interval(report.get("gap_recovered_interval"), signed=False))
    elif report.get("teacher") and report.get("student_before"):
        lines.append("Teacher-student gap recovered: n/a (teacher not better than the student before training)")
    if report.get("ci_overlap") is not None:
        lines.append("Before/after 95% CIs overlap: the change may be noise" if report["ci_overlap"]
                     else "Before/after 95% CIs do not overlap")
    return lines


def _interval(iv: Any, *, signed: bool) -> str:
    """`` (95% CI [lo, hi], paired bootstrap over n problems)`` for a bootstrap interval dict."""
    if not isinstance(iv, dict) or not iv.get("ci95"):
        return ""
    lo, hi = iv["ci95"]
    cells = f"{100 * lo:+.1f}, {100 * hi:+.1f}" if signed else f"{pct(lo)}, {pct(hi)}"
    return f" (95% CI [{cells}], bootstrap over {iv.get('n')} shared problems)"


ANSWER_HEADER = ["model", "tokens/answer [95% CI]", "median", "p90", "truncated", "answer found", "format"]


def answer_rows(report: dict[str, Any]) -> list[list[str]]:
    """Per model: tokens per answer (mean with bootstrap CI, median, p90), truncation rate, share
    of answers from which an answer could be extracted, share in the required format."""
    rows = []
    for model in MODELS:
        s = report.get(model) or {}
        tokens = s.get("tokens")
        if not isinstance(tokens, dict):
            continue
        q = tokens.get("quantiles") or {}
        ci = tokens.get("ci95") or [None, None]

        def num(x: Any) -> str:
            return "n/a" if x is None else f"{x:.1f}"
        rows.append([MODEL_LABELS[model], f"{num(tokens.get('mean'))} [{num(ci[0])}, {num(ci[1])}]",
                     num(q.get("p50")), num(q.get("p90")), pct(s.get("truncated_rate")),
                     pct(s.get("answer_rate")), pct(s.get("format_rate"))])
    return rows


def curation_rows(report: dict[str, Any]) -> list[list[str]]:
    """``[name, value]`` rows from ``report["curation"]``; nested counts become ``key: reason``."""
    rows = []
    for key, value in (report.get("curation") or {}).items():
        if isinstance(value, dict):
            rows += [[f"{key}: {k}", str(v)] for k, v in value.items()]
        else:
            rows.append([key, str(value)])
    return rows


def fmt_mb(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"


def cost_lines(report: dict[str, Any]) -> list[str]:
    """Two sentences: what the run folder cost (``run_cost``, summed over its stages as recorded
    when each actually ran) and, separately, what the latest invocation spent."""
    lines = []
    cost = report.get("run_cost")
    if isinstance(cost, dict):
        lines.append(f"Run cost (all stages, as recorded when each ran): wall time {fmt_seconds(cost.get('wall_seconds'))}, "
                     f"teacher calls {cost.get('teacher_calls', 0)} ({cost.get('cached_teacher_calls', 0)} served "
                     f"from the sample cache), peak memory {fmt_mb(cost.get('peak_rss_mb'))}")
    spent = report.get("this_run") or {k: report.get(k) for k in ("teacher_calls", "cached_teacher_calls",
                                                                   "wall_seconds")}
    calls, reused = spent.get("teacher_calls") or 0, spent.get("cached_teacher_calls") or 0
    wall = spent.get("wall_seconds") or 0
    if not calls and not reused and not wall:
        lines.append("This invocation: the report alone was rewritten from the run folder (no stage ran)")
    else:
        memory = f", peak memory {fmt_mb(spent['peak_rss_mb'])}" if spent.get("peak_rss_mb") is not None else ""
        lines.append(f"This invocation: wall time {fmt_seconds(wall)}, teacher calls {calls} "
                     f"({reused} reused from the cache or from finished stages){memory}")
    return lines


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def lineage_rows(report: dict[str, Any]) -> list[list[str]]:
    """``[step, what]`` rows: which problems, teacher, filters and objective produced which
    checkpoint and score (``report["lineage"]``; steps whose stage has no manifest are left out)."""
    lin = report.get("lineage") or {}
    rows: list[list[str]] = []
    if p := lin.get("problems"):
        where = p.get("task") if p.get("source") == "reasoning_gym" else p.get("source")
        seed = f", seed {p['seed']}" if "seed" in p else ""
        rows.append(["problems", f"{where} ({p.get('source', '?')}): {p.get('n_train', '?')} train / "
                                 f"{p.get('n_eval', '?')} held-out{seed}"])
    if t := lin.get("teacher"):
        name = t.get("teacher_identity") or t.get("teacher") or t.get("model") or "?"
        model = f" {t['model']}" if t.get("backend") not in (None, "program") and t.get("model") else ""
        rows.append(["teacher", f"{t.get('backend', '?')}{model} ({name}): {t.get('samples', '?')} sample(s) per "
                                f"problem at temperature {_num(t.get('temperature', '?'))}, rationalization "
                                f"{'on' if t.get('rationalize') else 'off'} -> {t.get('n_traces', '?')} traces "
                                f"({t.get('n_hinted', 0)} hinted)"])
    if v := lin.get("verify"):
        rows.append(["verify", f"{v.get('verifier', '?')}: {v.get('passed', '?')}/{v.get('n', '?')} traces passed "
                               f"({pct(v.get('pass_rate'))})"])
    if f := lin.get("filters"):
        dropped = ", ".join(f"{k} {n}" for k, n in (f.get("dropped") or {}).items()) or "none"
        rows.append(["filters", f"{' > '.join(f.get('policies') or []) or 'none recorded'}: kept "
                                f"{f.get('kept', '?')} of {f.get('traces', '?')} traces "
                                f"({f.get('negatives', 0)} negatives); dropped: {dropped}"])
    if pr := lin.get("pairs"):
        rows.append(["pairs", ", ".join(f"{k} {_num(v)}" for k, v in pr.items())])
    if o := lin.get("objective"):
        budget = f"{o['steps']} steps" if "steps" in o else (
            f"{o['max_steps']} max steps" if (o.get("max_steps") or 0) > 0 else f"{o.get('epochs', '?')} epochs")
        loss = f", final train loss {_num(o['train_loss'])}" if isinstance(o.get("train_loss"), (int, float)) else ""
        lora = " (LoRA)" if o.get("lora") else ""
        opts = f" {o['objective']}" if o.get("objective") else ""
        rows.append(["objective", f"{o.get('method', '?')}{opts}{lora} on {o.get('student', '?')}: {budget}, learning "
                                  f"rate {_num(o.get('learning_rate', '?'))}, {o.get('n_examples', '?')} examples{loss}"])
    if lin.get("checkpoint"):
        rows.append(["checkpoint", str(lin["checkpoint"])])
    if s := lin.get("score"):
        ci = s.get("ci95") or [None, None]
        gain = report.get("improvement")
        gain = f" ({signed_pts(gain)} over the student before)" if gain is not None else ""
        rows.append(["score", f"{MODEL_LABELS.get(s.get('model', ''), s.get('model', ''))} accuracy "
                              f"{pct(s.get('accuracy'))} [{pct(ci[0])}, {pct(ci[1])}] on {s.get('n', '?')} held-out "
                              f"problems{gain}"])
    return rows


ROUND_HEADER = ["round", "teacher", "accuracy", "95% CI", "problems picked", "traces added", "train examples",
                "wall time"]


def round_rows(report: dict[str, Any]) -> list[list[str]]:
    """``reasondistill loop``: one row per round from ``report["loop"]`` (round 0: the untrained student)."""
    loop = report.get("loop") or {}
    rows = []
    base = loop.get("baseline")
    if base:
        rows.append(["0 (untrained)", "-", pct(base.get("accuracy")),
                     f"[{pct(base['ci95'][0])}, {pct(base['ci95'][1])}]", "-", "-", "-", "-"])
    for r in loop.get("rounds", []):
        ci = r.get("ci95") or [None, None]
        rows.append([str(r["round"]), str(r.get("teacher", "")), pct(r.get("accuracy")),
                     f"[{pct(ci[0])}, {pct(ci[1])}]", str(r.get("problems_picked", "")),
                     str(r.get("traces_added", "")), str(r.get("train_examples", "")),
                     fmt_seconds(r.get("wall_seconds"))])
    return rows
