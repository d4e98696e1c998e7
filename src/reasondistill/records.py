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
class EvalMetric:
    """One aggregate metric for one model (a flattened row of an :class:`EvalSummary`)."""

    model: str
    metric: str
    value: float
    n: int
    ci: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """One evaluation's ``summary.json``: the greedy figures every reader needs, typed; the rest
    (pass@k, token statistics, settings, audit counts) in ``extra``, kept as written. Fields come
    first in the file, in this order, so a summary read and written again is byte-identical."""

    model: str
    n: int
    accuracy: float
    ci95: list[float] | None = None
    mean_score: float = 0.0
    format_rate: float = 0.0
    mean_tokens: float = 0.0
    truncated_rate: float = 0.0
    answer_rate: float = 0.0
    fallback_credits: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalSummary:
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        typed = {k: data[k] for k in names if k in data}
        typed.setdefault("model", ""), typed.setdefault("n", 0)
        return cls(**typed, extra={k: v for k, v in data.items() if k not in names})

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**out, "ci95": None if self.ci95 is None else list(self.ci95), **self.extra}

    def with_extra(self, **extra: Any) -> EvalSummary:
        return dataclasses.replace(self, extra={**self.extra, **extra})


# what a manifest's outputs called the model requests of a stage before the names were shared:
# {field: spellings, the current one first}
_CALL_NAMES = {"calls": ("calls", "teacher_calls"), "cached_calls": ("cached", "cached_teacher_calls")}


@dataclass(frozen=True, slots=True)
class StageManifest:
    """What a stage reports: its ``manifest.json`` with the facts the entry points add up under one
    name each. ``calls`` are the requests a backend answered when the stage ran (``generate``: the
    teacher's samples; an evaluation: the evaluated model's answers) and ``cached_calls`` those the
    sample cache served; manifests written before spell them ``teacher_calls``/``cached_teacher_calls``
    (generate) or ``calls``/``cached`` (evaluate), and both are read. ``skipped``: this invocation
    reused the finished stage. ``parts``: a stage with one manifest per model (evaluate)."""

    stage: str
    skipped: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: int | None = None  # None: the stage asks no model
    cached_calls: int | None = None
    wall_seconds: float | None = None
    peak_rss_mb: float | None = None
    parts: dict[str, StageManifest] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Any, stage: str = "") -> StageManifest:
        """From a manifest dict as a stage returns it (``this_run`` included) or as read from disk."""
        if isinstance(manifest, StageManifest):
            return manifest
        outputs = manifest.get("outputs") or {}
        calls = {f: next((int(outputs[k]) for k in names if isinstance(outputs.get(k), (int, float))), None)
                 for f, names in _CALL_NAMES.items()}
        return cls(stage=manifest.get("stage") or stage, skipped=bool((manifest.get("this_run") or {}).get("skipped")),
                   outputs=outputs, wall_seconds=manifest.get("wall_seconds"),
                   peak_rss_mb=manifest.get("peak_rss_mb"), raw=manifest, **calls)

    def spent(self) -> tuple[int, int]:
        """(requests answered, requests served from the cache) by this invocation: a reused stage
        asked nothing and served all it holds (its traces or answers)."""
        if self.calls is None:
            return 0, 0
        if self.skipped:
            return 0, int(self.outputs.get("n_traces", self.outputs.get("n", 0)))
        return self.calls, self.cached_calls or 0


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict, ignoring unknown keys (forward compatibility)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is EvalMetric and isinstance(kwargs.get("ci"), list):
        kwargs["ci"] = tuple(kwargs["ci"])
    return cls(**kwargs)
