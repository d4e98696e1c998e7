"""Per-problem policy: student-aware selection (RSD, "In Their Own Words"), when
``curate.student_aware`` sets ``top``, ``min_mean_logprob`` or ``max_low_prob_share``.

In ``prepare`` the student (``curate.student_aware.model``, default ``train.student``) scores every
correct trace in batched forward passes over the plain student prompt + the trace, under its chat
template (``reasondistill.scoring``): its mean token log-probability and its share of tokens below
``low_prob`` probability. Each scored trace's figures go to its ``meta`` in ``train.jsonl`` (or its
rejected row's ``notes``): ``student_mean_logprob``, ``student_low_prob_share``, ``student_tokens``.
The model is loaded only when the policy is on, and released after scoring.

Per problem, traces under ``min_mean_logprob`` or over ``max_low_prob_share`` are dropped (reason
``unlikely_for_student``); of the rest, only the ``top`` most likely are kept (reason
``not_student_top``; ties keep the best-first order). A trace that could not be scored is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import CurateConfig
from ..errors import ConfigError
from ..layout import Layout
from ..prompts import student_messages
from ..records import Problem, Trace, Verdict
from .base import TRAIN, CurateContext


@dataclass
class StudentAwareConfig:
    """``curate.student_aware``: keep the correct traces the student finds most likely (its mean token
    log-probability over the completion, under the chat template). On when ``top``,
    ``min_mean_logprob`` or ``max_low_prob_share`` is set; thresholds apply first, then ``top``."""

    top: int | None = None  # keep the n most likely traces per problem
    min_mean_logprob: float | None = None  # keep traces whose mean token log-probability is at least this
    max_low_prob_share: float | None = None  # keep traces whose share of low-probability tokens is at most this
    low_prob: float = 0.1  # a token is "low-probability" below this probability
    model: str | None = None  # the scoring model; None: train.student
    batch_size: int = 8
    max_length: int = 1024  # tokens of prompt + completion scored; longer ones are cut
    dtype: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.top is not None and self.top < 1:
            raise ConfigError("curate.student_aware.top must be >= 1")
        if self.max_low_prob_share is not None and not 0 <= self.max_low_prob_share <= 1:
            raise ConfigError("curate.student_aware.max_low_prob_share must be in [0, 1]")
        if not 0 < self.low_prob < 1:
            raise ConfigError("curate.student_aware.low_prob must be in (0, 1)")
        if self.batch_size < 1 or self.max_length < 2:
            raise ConfigError("curate.student_aware.batch_size must be >= 1 and max_length >= 2")

    @property
    def on(self) -> bool:
        return self.top is not None or self.min_mean_logprob is not None or self.max_low_prob_share is not None


def model_spec(opts: StudentAwareConfig, recipe: Any) -> str:
    return opts.model or recipe.train.student


@dataclass
class StudentAware:
    opts: StudentAwareConfig
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str = ""
    identity: str = ""
    name: ClassVar[str] = "unlikely_for_student"
    scope: ClassVar[tuple[str, ...]] = (TRAIN,)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> StudentAware | None:
        return cls(cfg.student_aware) if cfg.student_aware.on else None

    @classmethod
    def depends(cls, cfg: CurateConfig, recipe: Any, layout: Layout) -> dict[str, Any]:
        """The scoring model's identity (its files, not just its name), resolved without loading it."""
        if not cfg.student_aware.on:
            return {}
        from ..models import resolve

        return {"config": {"student": resolve(model_spec(cfg.student_aware, recipe)).identity}}

    def prepare(self, ctx: CurateContext) -> None:
        from ..scoring import Scorer

        todo = [t for t in ctx.traces if ctx.verdicts[t.id].passed and t.finish_reason != "error" and t.raw.strip()]
        self.model = model_spec(self.opts, ctx.recipe)
        if not todo:
            return
        scorer = Scorer.load(self.model, dtype=self.opts.dtype, device=self.opts.device,
                             trust_remote_code=ctx.recipe.train.trust_remote_code)
        self.identity = scorer.identity
        prompt_cfg = ctx.recipe.generate.prompt
        conversations = [(student_messages(ctx.problems[t.problem_id], prompt_cfg),
                          [{"role": "assistant", "content": t.raw.strip()}]) for t in todo]
        try:
            results = scorer.score(conversations, batch_size=self.opts.batch_size, max_length=self.opts.max_length,
                                   low_prob=self.opts.low_prob)
        finally:
            del scorer
        for t, r in zip(todo, results):
            if r["mean_logprob"] is None:
                continue
            self.scores[t.id] = r
            ctx.trace_notes[t.id].update({"student_mean_logprob": round(r["mean_logprob"], 4),
                                          "student_low_prob_share": round(r["low_prob_share"], 4),
                                          "student_tokens": r["tokens"]})

    def unlikely(self, trace: Trace) -> bool:
        s = self.scores.get(trace.id)
        if s is None:
            return False
        o = self.opts
        return ((o.min_mean_logprob is not None and s["mean_logprob"] < o.min_mean_logprob)
                or (o.max_low_prob_share is not None and s["low_prob_share"] > o.max_low_prob_share))

    def select(self, problem: Problem, traces: Sequence[Trace], verdicts: dict[str, Verdict]
               ) -> tuple[list[Trace], list[tuple[Trace, str]]]:
        dropped = [(t, self.name) for t in traces if self.unlikely(t)]
        rest = [t for t in traces if not self.unlikely(t)]
        if self.opts.top is not None and len(rest) > self.opts.top:
            def likelihood(i: int) -> tuple[float, int]:
                s = self.scores.get(rest[i].id)
                return (-s["mean_logprob"] if s else float("-inf")), i  # unscored first: kept

            top = set(sorted(range(len(rest)), key=likelihood)[: self.opts.top])
            dropped += [(t, "not_student_top") for i, t in enumerate(rest) if i not in top]
            rest = [t for i, t in enumerate(rest) if i in top]
        return rest, dropped

    def report(self) -> dict[str, Any]:
        means = sorted(s["mean_logprob"] for s in self.scores.values())
        return {"model": self.model, "identity": self.identity, "scored": len(self.scores),
                "top": self.opts.top, "min_mean_logprob": self.opts.min_mean_logprob,
                "max_low_prob_share": self.opts.max_low_prob_share, "low_prob": self.opts.low_prob,
                "median_mean_logprob": round(means[len(means) // 2], 4) if means else None}
