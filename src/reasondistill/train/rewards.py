"""Rule rewards for RL objectives (GRPO, KD+RL), built from the pipeline's own verifier.

The functions here have the shape TRL's ``GRPOTrainer`` calls reward functions with:
``fn(prompts=..., completions=..., completion_ids=..., **columns) -> list[float]``, where
``columns`` are the training dataset's extra columns, one value per completion (TRL repeats
each prompt's row ``num_generations`` times), plus ``trainer_state`` and logging hooks that these
rewards ignore. Completions are conversational (``[{"role": "assistant", "content": ...}]``) or
plain strings; both are accepted.

The problem a completion answers is rebuilt from the dataset columns that
:func:`problem_columns` writes: ``id``, ``source``, ``question`` (the problem text;
TRL reserves ``prompt`` for the chat messages and does not pass it on as a column), ``answer``
and ``meta`` (a JSON string, since Arrow cannot hold free-form dicts that differ from row to
row). Scoring goes through :func:`reasondistill.verify.score_text`, so RL optimises exactly the
notion of "correct" and "formatted" that curation and evaluation use.

Rewards:

- ``correctness``: the verifier's score in [0, 1] (``partial_credit``), or 1/0 for passed.
- ``answer_format``: 1 when the output has a final-answer line (``Answer: ...``) or a ``\\boxed{}``.
- ``length_penalty``: 0 up to ``budget_tokens`` completion tokens, then linearly negative,
  ``-(n - budget) / budget``, floored at ``-length_cap``.

:func:`build_rewards` turns a :class:`RewardConfig` into the ``(reward_funcs, reward_weights)``
pair for ``GRPOTrainer``; functions with weight 0 are left out.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import VerifyConfig
from ..errors import ConfigError
from ..records import Problem

RewardFunc = Callable[..., list[float]]


@dataclass
class RewardConfig:
    """Weights of the rule rewards (0 leaves a reward out) and the length budget."""

    correctness_weight: float = 1.0  # verifier score against the gold answer
    format_weight: float = 0.1  # 1 for a final-answer line / \boxed{}
    length_weight: float = 0.0  # token-budget penalty; 0: off
    budget_tokens: int = 256  # completions up to this many tokens are not penalised
    length_cap: float = 1.0  # the penalty never goes below -length_cap
    partial_credit: bool = True  # correctness = verifier score; False: 1 if passed else 0

    def __post_init__(self) -> None:
        weights = {"correctness_weight": self.correctness_weight, "format_weight": self.format_weight,
                   "length_weight": self.length_weight}
        for name, w in weights.items():
            if w < 0:
                raise ConfigError(f"rewards.{name} must be >= 0, got {w}")
        if not any(w > 0 for w in weights.values()):
            raise ConfigError("rewards: every reward weight is 0; set correctness_weight, format_weight or "
                              "length_weight > 0")
        if self.budget_tokens < 1:
            raise ConfigError("rewards.budget_tokens must be >= 1")
        if self.length_cap <= 0:
            raise ConfigError("rewards.length_cap must be > 0")


# ---------------------------------------------------------------------------
# dataset columns <-> problems


def problem_columns(problem: Problem) -> dict[str, str]:
    """The dataset columns a reward needs to rebuild ``problem`` (see the module docstring)."""
    return {"id": problem.id, "source": problem.source, "question": problem.prompt, "answer": problem.answer,
            "meta": json.dumps(problem.meta or {}, ensure_ascii=False, sort_keys=True)}


def _at(column: Sequence[Any] | None, i: int, default: Any = None) -> Any:
    return default if column is None else column[i]


def problems_from_columns(n: int, *, id: Sequence[str] | None = None, answer: Sequence[str] | None = None,
                          meta: Sequence[str | dict | None] | None = None, question: Sequence[str] | None = None,
                          source: Sequence[str] | None = None, prompts: Sequence[Any] | None = None) -> list[Problem]:
    """Rebuild the ``n`` problems of a reward call from its column keyword arguments.

    ``question`` falls back to the last user message of ``prompts`` when the column is absent.
    """
    if answer is None:
        raise ConfigError("correctness reward: the training dataset has no 'answer' column "
                          "(build it with reasondistill.train.rewards.problem_columns)")
    out = []
    for i in range(n):
        raw_meta = _at(meta, i)
        meta_i = json.loads(raw_meta) if isinstance(raw_meta, str) and raw_meta else (raw_meta or {})
        text = _at(question, i)
        if text is None and prompts is not None:
            text = completion_text(prompts[i]) if not isinstance(prompts[i], str) else prompts[i]
        out.append(Problem(id=str(_at(id, i, i)), source=str(_at(source, i, "") or ""), prompt=text or "",
                           answer=str(answer[i]), meta=meta_i))
    return out


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of a plain or conversational completion (the last message's content)."""
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    content = completion[-1].get("content", "")
    if isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


# ---------------------------------------------------------------------------
# the rewards (TRL signature)


def correctness(prompts: list, completions: list, *, verify_cfg: VerifyConfig | None = None,
                partial_credit: bool = True, **columns: Any) -> list[float]:
    """Verifier score of each completion against its problem's gold answer."""
    problems = problems_from_columns(len(completions), id=columns.get("id"), answer=columns.get("answer"),
                                     meta=columns.get("meta"), question=columns.get("question"),
                                     source=columns.get("source"), prompts=prompts)
    from ..grading import score_text

    cfg = verify_cfg or VerifyConfig()
    out = []
    for problem, completion in zip(problems, completions, strict=True):
        s = score_text(problem, completion_text(completion), cfg)
        out.append(float(s.score) if partial_credit else float(s.passed))
    return out


def answer_format(prompts: list, completions: list, **columns: Any) -> list[float]:
    """1.0 when a completion states a final answer in the required format (``Answer:`` line or
    ``\\boxed{}``), else 0.0: the ``formatted`` flag of the verifier's :class:`Score`."""
    from ..grading.answers import extract_answer

    return [1.0 if extract_answer(completion_text(c), fallback_last_number=False)[1] else 0.0 for c in completions]


def length_penalty(prompts: list, completions: list, *, budget_tokens: int = 256, length_cap: float = 1.0,
                   completion_ids: list[list[int]] | None = None, tokenizer: Any = None,
                   **columns: Any) -> list[float]:
    """0 within ``budget_tokens`` completion tokens, then ``-(n - budget) / budget``, floored at ``-length_cap``.

    Token counts come from ``completion_ids`` (TRL passes them); without them, from ``tokenizer``.
    """
    if completion_ids is not None:
        counts = [len(ids) for ids in completion_ids]
    elif tokenizer is not None:
        counts = [len(tokenizer(completion_text(c), add_special_tokens=False)["input_ids"]) for c in completions]
    else:
        raise ConfigError("length_penalty needs completion_ids (passed by GRPOTrainer) or a tokenizer")
    return [-min(length_cap, max(0, n - budget_tokens) / budget_tokens) for n in counts]


def build_rewards(cfg: RewardConfig, verify_cfg: VerifyConfig | None = None) -> tuple[list[RewardFunc], list[float]]:
    """``(reward_funcs, reward_weights)`` for ``GRPOTrainer``, leaving out rewards weighted 0.

    The functions are ``functools.partial`` objects of the module-level rewards, so TRL logs them
    as ``rewards/correctness/mean``, ``rewards/answer_format/mean`` and ``rewards/length_penalty/mean``.
    """
    verify_cfg = verify_cfg or VerifyConfig()
    table: list[tuple[float, RewardFunc]] = [
        (cfg.correctness_weight,
         functools.partial(correctness, verify_cfg=verify_cfg, partial_credit=cfg.partial_credit)),
        (cfg.format_weight, functools.partial(answer_format)),
        (cfg.length_weight,
         functools.partial(length_penalty, budget_tokens=cfg.budget_tokens, length_cap=cfg.length_cap)),
    ]
    kept = [(w, f) for w, f in table if w > 0]
    return [f for _, f in kept], [float(w) for w, _ in kept]


def reward_name(func: RewardFunc) -> str:
    """The name TRL logs a reward function under."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", type(func).__name__)
