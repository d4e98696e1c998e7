"""Verify stage runner: problems.jsonl + traces.jsonl -> verdicts.jsonl + manifest.json."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..config import VerifyConfig
from ..errors import InputError
from ..io import completed_manifest, hash_inputs, iter_jsonl, read_records, write_jsonl, write_manifest
from ..records import Problem, Trace, Verdict
from .base import get_verifier, run_check

log = logging.getLogger(__name__)

VERDICTS = "verdicts.jsonl"


def line_of(path: str | Path, index: int) -> int:
    """Line number of the ``index``-th record of a JSONL file (blank lines are skipped by readers)."""
    for i, (lineno, _) in enumerate(iter_jsonl(path, allow_empty=True)):
        if i == index:
            return lineno
    return index + 1


def index_by_id(records: list[Any], path: str | Path, attr: str = "id") -> dict[str, Any]:
    """``{record.<attr>: record}``; a repeated id is an :class:`InputError` naming its line."""
    out: dict[str, Any] = {}
    for i, rec in enumerate(records):
        key = getattr(rec, attr)
        if key in out:
            raise InputError(f"duplicate {attr} {key!r}", file=path, line=line_of(path, i), field=attr)
        out[key] = rec
    return out


def check_problem_ids(traces: list[Trace], problems: dict[str, Problem], traces_path: str | Path,
                      problems_path: str | Path) -> None:
    for i, trace in enumerate(traces):
        if trace.problem_id not in problems:
            raise InputError(f"trace {trace.id!r} refers to problem {trace.problem_id!r}, which is not in "
                             f"{problems_path}", file=traces_path, line=line_of(traces_path, i), field="problem_id")


def summarize(verdicts: list[Verdict], formatted: list[bool]) -> dict[str, Any]:
    n = len(verdicts)
    passed = sum(v.passed for v in verdicts)
    return {
        "n": n,
        "passed": passed,
        "pass_rate": round(passed / n, 4) if n else None,
        "formatted": sum(formatted),
        "format_rate": round(sum(formatted) / n, 4) if n else None,
        "mean_score": round(sum(v.score for v in verdicts) / n, 4) if n else None,
        "reasons": dict(Counter(v.reason.split(":", 1)[0] for v in verdicts).most_common()),
        "verifiers": dict(Counter(v.verifier for v in verdicts).most_common()),
    }


def run(cfg: VerifyConfig, problems_path: str | Path, traces_path: str | Path, out_dir: str | Path) -> dict:
    """Verify every trace's ``raw`` text; write ``verdicts.jsonl`` (in trace order) and the manifest.

    Returns the manifest. A finished run with the same config and inputs is reused as is.
    """
    started = time.time()
    out_dir = Path(out_dir)
    config = dataclasses.asdict(cfg)
    inputs = hash_inputs([problems_path, traces_path])
    if (done := completed_manifest(out_dir, config, inputs)) is not None:
        log.info("verify: %s is up to date, reusing it", out_dir)
        return done

    problems = index_by_id(read_records(problems_path, Problem), problems_path)
    traces = read_records(traces_path, Trace)
    index_by_id(traces, traces_path)
    check_problem_ids(traces, problems, traces_path, problems_path)

    verdicts: list[Verdict] = []
    formatted: list[bool] = []
    for trace in tqdm(traces, desc="verify", unit="trace", disable=None):
        problem = problems[trace.problem_id]
        verifier = get_verifier(cfg.verifier, problem, fallback_last_number=cfg.fallback_last_number)
        score = run_check(verifier, problem, trace.raw, cfg.timeout_s,
                          fallback_last_number=cfg.fallback_last_number)
        verdicts.append(Verdict(trace_id=trace.id, problem_id=trace.problem_id, verifier=verifier.name,
                                score=score.score, passed=score.passed, reason=score.reason,
                                extracted=score.extracted))
        formatted.append(score.formatted)

    write_jsonl(out_dir / VERDICTS, verdicts)
    counts = summarize(verdicts, formatted)
    log.info("verify: %d/%d traces passed (format rate %s)", counts["passed"], counts["n"], counts["format_rate"])
    return write_manifest(out_dir, stage="verify", config=config, inputs=inputs,
                          outputs={"files": [VERDICTS], "counts": counts}, started=started)
