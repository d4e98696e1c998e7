"""Stage 3a, verify: score each teacher trace against its problem's gold answer
(train problems + traces -> verdicts + manifest). The checkers live in ``grading/``."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import Any

from tqdm.auto import tqdm

from ..config import VerifyConfig
from ..io import cached_stage, check_problem_ids, index_by_id, read_records, write_jsonl
from ..layout import Layout
from ..records import Problem, Trace, Verdict
from ..grading import get_verifier, run_check

log = logging.getLogger(__name__)

STAGE = "verify"


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


def run(recipe: Any, layout: Layout) -> dict:
    """Verify every trace's ``raw`` text; write the verdicts (in trace order) and the manifest.

    Returns the manifest. A finished run with the same config and inputs is reused as is.
    """
    cfg: VerifyConfig = recipe.verify
    problems_path, traces_path, out = layout.train_problems, layout.traces, layout.verdicts

    def body() -> dict:
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
                              fallback_last_number=cfg.fallback_last_number, truncated=trace.finish_reason == "length")
            verdicts.append(Verdict(trace_id=trace.id, problem_id=trace.problem_id, verifier=verifier.name,
                                    score=score.score, passed=score.passed, reason=score.reason,
                                    extracted=score.extracted))
            formatted.append(score.formatted)
        write_jsonl(out, verdicts)
        counts = summarize(verdicts, formatted)
        log.info("verify: %d/%d traces passed (format rate %s)", counts["passed"], counts["n"], counts["format_rate"])
        return {"files": [out.name], "counts": counts}

    return cached_stage(out.parent, stage=STAGE, config=dataclasses.asdict(cfg), inputs=[problems_path, traces_path],
                        body=body)
