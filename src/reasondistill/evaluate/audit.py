"""Checker audit: two answer checkers over the same evaluation outputs, and where they disagree.

A score is only as good as its checker. The audit grades every evaluated answer twice, with the
math-verify based ``math`` verifier (numeric and symbolic equivalence: ``1/2 == 0.5``) and with
a normalised string match (the ``exact`` verifier: case, spaces, ``$``, thousands commas), on the
same extracted answer. Where they disagree, one of them is wrong about that answer; the rows go to
``audit.jsonl`` (problem id, sample, gold, extracted answer, what each checker said and why, and
what the evaluation recorded) and the counts to ``summary.json["audit"]``, so a reader sees how
much of a score hangs on the checker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import io
from ..config import VerifyConfig
from ..errors import InputError
from ..layout import EVAL_FILES, MANIFEST
from ..records import EvalSample, Problem

CHECKERS = ("math", "exact")  # math-verify based; normalised string match


def audit(problems: Sequence[Problem], samples: Sequence[EvalSample],
          verify_cfg: VerifyConfig | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(disagreement rows, counts)`` for ``samples`` of ``problems``. Problems without a gold
    answer are not graded by either checker and are not counted."""
    from ..grading import get_verifier, run_check

    cfg = verify_cfg or VerifyConfig()
    by_id = {p.id: p for p in problems}
    checkers = [get_verifier(name, fallback_last_number=cfg.fallback_last_number) for name in CHECKERS]
    rows: list[dict[str, Any]] = []
    n = math_only = string_only = fallback_credits = 0
    for s in samples:
        problem = by_id.get(s.problem_id)
        if problem is None or not (problem.answer or "").strip():
            continue
        n += 1
        math_score, string_score = (run_check(c, problem, s.text, cfg.timeout_s, fallback_last_number=cfg.fallback_last_number,
                                              truncated=s.finish_reason == "length") for c in checkers)
        fallback_credits += s.passed and not s.formatted
        if math_score.passed == string_score.passed:
            continue
        math_only += math_score.passed
        string_only += string_score.passed
        rows.append({"problem_id": s.problem_id, "sample_idx": s.sample_idx, "gold": problem.answer,
                     "extracted": {"math": math_score.extracted, "exact": string_score.extracted},
                     "math": {"passed": math_score.passed, "reason": math_score.reason},
                     "exact": {"passed": string_score.passed, "reason": string_score.reason},
                     "recorded_passed": s.passed})
    counts = {"checkers": {"math": "math-verify equivalence", "exact": "normalised string match"},
              "n": n, "agree": n - len(rows), "disagree": len(rows), "math_only": math_only,
              "exact_only": string_only, "fallback_credits": fallback_credits, "file": EVAL_FILES["audit"]}
    return rows, counts


def problems_path_of(eval_dir: Path, summary: dict[str, Any]) -> Path:
    """The problem file an evaluation read: its manifest's input (named relative to ``eval_dir``;
    an older manifest's name as typed is tried too), else the path its settings recorded. A file
    found is only taken when its sha256 is the one recorded, so a moved run folder finds its own."""
    recorded = (summary.get("settings") or {}).get("problems") or {}
    candidates: list[tuple[Path, str | None]] = []
    manifest = eval_dir / MANIFEST
    if manifest.is_file() and isinstance(m := io.read_json(manifest), dict):
        for name, digest in (m.get("inputs") or {}).items():
            candidates += [(eval_dir / name, digest), (Path(name), digest)]
    if recorded.get("path"):
        candidates.append((Path(recorded["path"]), recorded.get("sha256")))
    for path, digest in candidates:
        if path.is_file() and (digest is None or io.sha256_file(path) == digest):
            return path
    raise InputError("cannot find the problems this evaluation read (none recorded exists); pass --problems",
                     file=eval_dir)


def audit_dir(eval_dir: str | Path, *, problems_path: str | Path | None = None,
              verify_cfg: VerifyConfig | None = None) -> dict[str, Any]:
    """Audit an existing evaluation folder: writes ``audit.jsonl``, puts the counts into its
    ``summary.json`` (and refreshes the manifest's output hashes, so the evaluation still counts
    as finished), and returns the counts."""
    eval_dir = Path(eval_dir)
    summary_path, samples_path = eval_dir / EVAL_FILES["summary"], eval_dir / EVAL_FILES["samples"]
    for path in (summary_path, samples_path):
        if not path.is_file():
            raise InputError(f"not an evaluation folder: {path.name} not found", file=eval_dir)
    summary = io.read_json(summary_path)
    if not isinstance(summary, dict):
        raise InputError("expected a JSON object", file=summary_path)
    problems = io.read_records(problems_path or problems_path_of(eval_dir, summary), Problem)
    rows, counts = audit(problems, io.read_records(samples_path, EvalSample), verify_cfg)
    io.write_jsonl(eval_dir / EVAL_FILES["audit"], rows)
    summary["audit"] = counts
    io.write_json(summary_path, summary)
    manifest_path = eval_dir / MANIFEST
    if manifest_path.is_file() and isinstance(m := io.read_json(manifest_path), dict):
        files = list((m.get("outputs") or {}).get("files") or [])
        if EVAL_FILES["audit"] not in files:
            files.append(EVAL_FILES["audit"])
            m.setdefault("outputs", {})["files"] = files
        m["output_hashes"] = io.output_hashes(eval_dir, {"files": files})
        io.write_json(manifest_path, m)
    return counts
