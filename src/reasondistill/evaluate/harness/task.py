"""What every harness adapter shares: the problem set on disk as the harness reads it, and the
result that puts the harness's score beside our checker's on the same generations.

The harness gets exactly the user message our own evaluation sends (``student_messages``,
with a multi-task student's prefix), so its chat-templated prompt is the one the student was
trained on. Its raw generations are then re-graded with our verifier: where the two scores
differ, the difference is in answer extraction and matching, not in what the model wrote.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ... import io, metrics
from ...config import PromptConfig, VerifyConfig
from ...errors import ServiceError
from ...records import EvalSample, Problem
from ...prompts import student_messages, with_task_prefix

DATA_FILE = "problems.jsonl"  # the rows the harness's task reads: {id, question, answer}
RESULT_FILE = "result.json"
SAMPLES_FILE = "samples.jsonl"  # EvalSample rows, graded by our verifier
HARNESS_SAMPLES_FILE = "harness_samples.jsonl"  # one HarnessSample per problem: both scores
TASK_NAME = "reasondistill_problems"
# the final-answer line our prompts ask for; each harness's own extraction looks for the number on it
ANSWER_REGEX = r"Answer:\s*\$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)"
RawSample = tuple[str, str, "str | None", float]  # (problem_id, generation, harness_extracted, harness_score)


@dataclass(frozen=True, slots=True)
class HarnessAdapter:
    """One harness: its metric, its exact installed version, and three steps: write its task
    over ``problems.jsonl`` into a folder, run it (offline) into a raw output file, and parse
    that file into its score and per-sample rows."""

    name: str
    metric: str
    write_task: Callable[..., Path]  # (data_file, out_dir, max_new_tokens) -> task folder
    run: Callable[..., Path]  # (model_dir, task_dir, out_dir, *, device, dtype, batch_size) -> raw file
    parse: Callable[[Path], tuple[float, list[RawSample]]]
    version: Callable[[], str]  # the installed harness's exact version (or a ConfigError saying how to get it)


@dataclass(frozen=True, slots=True)
class HarnessSample:
    """One problem as the harness answered it, scored by the harness and by our verifier."""

    problem_id: str
    generation: str  # the harness's raw generation, before its filters
    harness_extracted: str | None
    harness_score: float
    our_extracted: str | None
    our_score: float
    our_passed: bool


@dataclass(frozen=True, slots=True)
class HarnessResult:
    """``result.json``: which harness (exact version) scored which model on which problems, and
    both scores over the same generations."""

    harness: str
    harness_version: str
    task: str
    model: str
    n: int
    harness_metric: str
    harness_score: float
    our_score: float
    our_ci95: list[float]
    agreement: float  # share of problems where harness and our checker agree on pass/fail
    max_new_tokens: int
    files: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def question(problem: Problem, prompt_cfg: PromptConfig | None = None, task_prefix: str | None = None) -> str:
    """The user message our evaluation sends for ``problem``."""
    messages = with_task_prefix(student_messages(problem, prompt_cfg), task_prefix)
    return messages[-1]["content"]


def write_dataset(problems: list[Problem], path: str | Path, prompt_cfg: PromptConfig | None = None,
                  task_prefix: str | None = None) -> Path:
    """The problem set as the harness's task reads it: one ``{id, question, answer}`` row each."""
    rows = [{"id": p.id, "question": question(p, prompt_cfg, task_prefix), "answer": p.answer} for p in problems]
    io.write_jsonl(path, rows)
    return Path(path)


def regrade(problems: dict[str, Problem], raw: list[RawSample], model: str,
            verify_cfg: VerifyConfig | None = None) -> tuple[list[HarnessSample], list[EvalSample]]:
    """Grade each ``(problem_id, generation, harness_extracted, harness_score)`` with our verifier."""
    from ...grading import score_text

    both: list[HarnessSample] = []
    ours: list[EvalSample] = []
    for pid, text, extracted, score in raw:
        s = score_text(problems[pid], text, verify_cfg)
        both.append(HarnessSample(pid, text, extracted, float(score), s.extracted, s.score, s.passed))
        ours.append(EvalSample(problem_id=pid, model=model, sample_idx=0, score=s.score, passed=s.passed,
                               extracted=s.extracted, formatted=s.formatted, completion_tokens=0, text=text))
    return both, ours


def write_result(out: Path, *, harness: str, version: str, model: str, metric: str, harness_score: float,
                 both: list[HarnessSample], ours: list[EvalSample], max_new_tokens: int, files: list[str],
                 wall_seconds: float) -> HarnessResult:
    """Write ``samples.jsonl``, ``harness_samples.jsonl`` and ``result.json`` into ``out``."""
    summary = metrics.summarize(ours, model)
    agree = sum((b.harness_score >= 1.0) == b.our_passed for b in both)
    result = HarnessResult(harness=harness, harness_version=version, task=TASK_NAME, model=model, n=len(both),
                           harness_metric=metric, harness_score=float(harness_score),
                           our_score=summary["accuracy"], our_ci95=list(summary["ci95"]),
                           agreement=agree / len(both) if both else 0.0, max_new_tokens=max_new_tokens,
                           files=sorted({*files, SAMPLES_FILE, HARNESS_SAMPLES_FILE, RESULT_FILE}),
                           wall_seconds=round(wall_seconds, 2))
    io.write_jsonl(out / SAMPLES_FILE, ours)
    io.write_jsonl(out / HARNESS_SAMPLES_FILE, both)
    io.write_json(out / RESULT_FILE, asdict(result))
    return result


def timed_out(harness: str, e: subprocess.TimeoutExpired, log_file: Path) -> ServiceError:
    """A harness child past its time limit (killed by ``subprocess.run``): its output so far goes to the log."""
    def text(x: bytes | str | None) -> str:
        return x.decode("utf-8", "replace") if isinstance(x, bytes) else (x or "")

    log_file.write_text(text(e.stdout) + text(e.stderr), encoding="utf-8")
    return ServiceError(f"{harness} did not finish within {e.timeout:g} s and was stopped; its output: {log_file}")
