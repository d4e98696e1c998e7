"""The record types that cross stage boundaries.

Stages exchange these (stored as JSONL), never bare dicts. ``meta`` is the one
free-form escape hatch on each record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One question with its gold answer. ``source`` names where it came from."""

    id: str
    source: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trace:
    """One sampled rationale from a teacher (LLM, program, or student with hints)."""

    id: str
    problem_id: str
    teacher: str
    sample_idx: int
    reasoning: str
    answer_text: str
    raw: str
    finish_reason: str  # "stop" | "length" | "error"
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens
    logprobs: list[dict[str, Any]] | None = None  # optional per-token top-k (kept out of traces.jsonl)
    hinted: bool = False  # True for STaR rationalizations (gold answer shown)
    style: str = "cot"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verifier's judgement of one trace. ``score`` is in [0, 1]."""

    trace_id: str
    problem_id: str
    verifier: str
    score: float
    passed: bool
    reason: str
    extracted: str | None = None


@dataclass(frozen=True, slots=True)
class TrainExample:
    """TRL's conversational prompt-completion format, plus lineage in ``meta``."""

    prompt: list[dict[str, str]]
    completion: list[dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PreferenceExample:
    """TRL's conversational preference format (a correct and an incorrect trace of one
    problem), plus lineage in ``meta``: problem_id, chosen_trace_id, rejected_trace_id."""

    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvalSample:
    """Per-sample evaluation result; aggregation happens separately."""

    problem_id: str
    model: str
    sample_idx: int
    score: float
    passed: bool
    extracted: str | None
    formatted: bool  # did the output use the required final-answer format
    completion_tokens: int
    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """One aggregate metric for one model."""

    model: str
    metric: str
    value: float
    n: int
    ci: tuple[float, float] | None = None


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, ignoring unknown keys (forward compatibility)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is EvalSummary and isinstance(kwargs.get("ci"), list):
        kwargs["ci"] = tuple(kwargs["ci"])
    return cls(**kwargs)
