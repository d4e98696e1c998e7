"""Checks run before any training, so a run that cannot work fails in seconds, not hours.

:func:`preflight` looks at three things, each cheap (tokenizers, configs, one rendered example):

(a) **Vocabulary compatibility** (only with a teacher): token-level objectives (logit KD, KL to a
    teacher) compare the two models' distributions id by id, which only means something when both
    tokenizers map the same strings to the same ids. Identical vocabularies pass. Identical
    tokenizers whose models carry extra, padded output rows (Qwen2.5-7B has 152064 rows,
    Qwen2.5-0.5B 151936, for the same 151665-token tokenizer) pass with a note: logits are
    truncated to the shared row count. Anything else raises :class:`ConfigError` and suggests
    sequence-level distillation (SFT on teacher traces), which needs no shared vocabulary.
(b) **Chat template and EOS**: a training example is rendered with the student's chat template,
    as TRL renders conversational prompt/completion rows. Its completion must end with a token
    generation stops on (``tokenizer.eos_token_id`` or the model's ``generation_config`` eos ids),
    else the student is never taught to stop and every sample runs to ``max_new_tokens``.
    Trailing whitespace after the stop token is fine (ChatML writes ``<|im_end|>\\n``).
(c) **Mixed-loss magnitudes**: given each loss term's value on a first batch, a ratio above
    ``max_ratio`` (100x) means the small term barely moves training; the report suggests weights
    that bring every term to the largest one's magnitude.

Hard failures raise; everything else lands in the :class:`PreflightReport`, which callers print
(``report.format()``) and store in their manifest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_EXAMPLE = {
    "prompt": [{"role": "user", "content": "What is 2 + 3?"}],
    "completion": [{"role": "assistant", "content": "2 + 3 = 5\nAnswer: 5"}],
}

# Strings both tokenizers must split identically (numbers, whitespace, unicode, LaTeX).
PROBES = (
    "Answer: 3,456.78",
    "  two spaces\n\ttab\n\nblank line",
    "Ünïcödé ∑ 数学 🙂",
    "x^2 + y_1 = \\frac{1}{2} \\boxed{42}",
)

SEQUENCE_LEVEL_HINT = ("Use sequence-level distillation instead: generate teacher traces and train the student "
                       "on them with SFT (train.method=sft), which needs no shared vocabulary.")


@dataclass
class PreflightReport:
    """What :func:`preflight` found. ``ok`` is True when there is nothing to warn about."""

    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    student_rows: int | None = None  # output rows (logits) of the student
    teacher_rows: int | None = None
    shared_vocab: int | None = None  # logits are compared over ids [0, shared_vocab)
    stop_ids: list[int] = field(default_factory=list)  # ids generation stops on
    suggested_weights: dict[str, float] = field(default_factory=dict)  # from (c), when unbalanced

    @property
    def ok(self) -> bool:
        return not self.warnings

    def format(self) -> str:
        head = "preflight: ok" if self.ok else f"preflight: {len(self.warnings)} warning(s)"
        lines = [head]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "warnings": list(self.warnings), "notes": list(self.notes),
                "student_rows": self.student_rows, "teacher_rows": self.teacher_rows,
                "shared_vocab": self.shared_vocab, "stop_ids": list(self.stop_ids),
                "suggested_weights": dict(self.suggested_weights)}


def preflight(student_tok, teacher_tok=None, *, student_model=None, teacher_model=None,
              example: Any = None, losses: Mapping[str, float] | None = None,
              max_ratio: float = 100.0) -> PreflightReport:
    """Run the checks (see the module docstring); raise :class:`ConfigError` on a hard failure.

    ``student_model``/``teacher_model`` may be models, configs (their ``vocab_size`` is read, so
    nothing has to be loaded) or plain row counts. ``example`` is a TRL conversational row (a
    :class:`~reasondistill.records.TrainExample` or a dict with ``prompt``/``completion``); None
    renders a small built-in one. ``losses`` maps each loss term's name to its value on a first batch.
    """
    report = PreflightReport()
    report.student_rows = output_rows(student_model)
    report.teacher_rows = output_rows(teacher_model)
    if teacher_tok is not None or teacher_model is not None:
        check_vocab(student_tok, teacher_tok if teacher_tok is not None else student_tok, report,
                    example=example)
    report.stop_ids = stop_token_ids(student_tok, student_model)
    check_chat_template(student_tok, example, report)
    if losses:
        check_losses(losses, report, max_ratio=max_ratio)
    return report


# ---------------------------------------------------------------------------
# (a) vocabulary


def output_rows(model: Any) -> int | None:
    """Number of output rows (logits) of a model, a config, or an int; None when unknown."""
    if model is None:
        return None
    if isinstance(model, int):
        return model
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        head = get_out()
        if head is not None and getattr(head, "weight", None) is not None:
            return int(head.weight.shape[0])
    config = getattr(model, "config", model)
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    rows = getattr(config, "vocab_size", None)
    return int(rows) if rows is not None else None


def _describe_vocab_difference(sv: dict[str, int], tv: dict[str, int]) -> str:
    parts = [f"student {len(sv)} tokens, teacher {len(tv)}"]
    s_inv = {i: t for t, i in sv.items()}
    t_inv = {i: t for t, i in tv.items()}
    differing = [i for i in sorted(set(s_inv) | set(t_inv)) if s_inv.get(i) != t_inv.get(i)]
    if differing:
        shown = ", ".join(f"id {i}: {s_inv.get(i)!r} vs {t_inv.get(i)!r}" for i in differing[:3])
        parts.append(f"{len(differing)} ids map to different tokens ({shown}{', ...' if len(differing) > 3 else ''})")
    return "; ".join(parts)


def _encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def check_vocab(student_tok, teacher_tok, report: PreflightReport, *, example: Any = None) -> None:
    """Raise :class:`ConfigError` unless the tokenizers share one vocabulary; fill ``shared_vocab``."""
    sv, tv = student_tok.get_vocab(), teacher_tok.get_vocab()
    if sv != tv:
        raise ConfigError("student and teacher tokenizers do not share a vocabulary "
                          f"({_describe_vocab_difference(sv, tv)}): token-level distillation compares "
                          f"the two models' logits id by id, which is meaningless here. {SEQUENCE_LEVEL_HINT}")
    probes = list(PROBES)
    if example is not None:
        prompt, completion = example_messages(example)
        probes += [m.get("content", "") for m in prompt + completion if isinstance(m.get("content"), str)]
    for text in probes:
        if _encode(student_tok, text) != _encode(teacher_tok, text):
            raise ConfigError(f"student and teacher tokenizers have the same vocabulary but split {text[:40]!r} "
                              f"differently (normalizer or merges differ), so their per-token distributions do "
                              f"not line up. {SEQUENCE_LEVEL_HINT}")
    if teacher_tok is not student_tok:
        for name in ("eos_token", "bos_token", "pad_token"):
            s, t = getattr(student_tok, name, None), getattr(teacher_tok, name, None)
            if s != t:
                report.notes.append(f"{name} differs (student {s!r}, teacher {t!r}); the student's is used")
        if getattr(student_tok, "chat_template", None) != getattr(teacher_tok, "chat_template", None):
            report.notes.append("chat templates differ: the teacher scores sequences rendered with the "
                                "student's template")

    n_tokens = len(student_tok)
    s_rows, t_rows = report.student_rows, report.teacher_rows
    for who, rows in (("student", s_rows), ("teacher", t_rows)):
        if rows is not None and rows < n_tokens:
            raise ConfigError(f"the {who} model has {rows} output rows but its tokenizer has {n_tokens} tokens: "
                              f"tokenizer and model do not belong together")
    if s_rows is not None and t_rows is not None:
        report.shared_vocab = min(s_rows, t_rows)
        if s_rows != t_rows:
            report.notes.append(
                f"same tokenizer ({n_tokens} tokens), but the student has {s_rows} output rows and the teacher "
                f"{t_rows} (padded embedding rows): logits are truncated to the shared vocab size "
                f"{report.shared_vocab}")
        else:
            report.notes.append(f"student and teacher share the vocabulary ({s_rows} output rows)")
    else:
        report.shared_vocab = s_rows if s_rows is not None else t_rows
        report.notes.append(f"student and teacher tokenizers share the vocabulary ({n_tokens} tokens)")


# ---------------------------------------------------------------------------
# (b) chat template and EOS


def example_messages(example: Any) -> tuple[list[dict], list[dict]]:
    """``(prompt, completion)`` message lists of a TrainExample or a TRL conversational dict."""
    if example is None:
        example = DEFAULT_EXAMPLE
    prompt = example["prompt"] if isinstance(example, Mapping) else getattr(example, "prompt")
    completion = example["completion"] if isinstance(example, Mapping) else getattr(example, "completion")
    if isinstance(prompt, str) or isinstance(completion, str):
        raise ConfigError("preflight example must be conversational (lists of {role, content} messages)")
    return list(prompt), list(completion)


def stop_token_ids(tok, model: Any = None) -> list[int]:
    """Ids generation stops on: the tokenizer's eos plus the model's ``generation_config`` eos ids."""
    ids: list[int] = []
    if getattr(tok, "eos_token_id", None) is not None:
        ids.append(int(tok.eos_token_id))
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None) if gen is not None else None
    for i in ([extra] if isinstance(extra, int) else list(extra or [])):
        if int(i) not in ids:
            ids.append(int(i))
    return ids


def _render_ids(tok, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                  return_dict=True)
    return list(out["input_ids"])


def check_chat_template(tok, example: Any, report: PreflightReport) -> None:
    """Warn unless the rendered completion ends with a stop token (trailing whitespace allowed)."""
    prompt, completion = example_messages(example)
    if not getattr(tok, "chat_template", None):
        report.warnings.append("the student tokenizer has no chat template: conversational examples cannot be "
                               "rendered the way training and evaluation expect; set tokenizer.chat_template")
        return
    if not report.stop_ids:
        report.warnings.append("no stop token: the tokenizer has no eos_token and the model no generation_config "
                               "eos_token_id, so generation only ends at max_new_tokens")
        return
    prompt_ids = _render_ids(tok, prompt, add_generation_prompt=True)
    full_ids = _render_ids(tok, prompt + completion, add_generation_prompt=False)
    if full_ids[:len(prompt_ids)] != prompt_ids:
        report.warnings.append("the prompt rendered with add_generation_prompt=True is not a prefix of the rendered "
                               "conversation, so completion-only loss masks will be misplaced")
        n = 0
        while n < min(len(prompt_ids), len(full_ids)) and prompt_ids[n] == full_ids[n]:
            n += 1
        completion_ids = full_ids[n:]
    else:
        completion_ids = full_ids[len(prompt_ids):]
    tail = list(completion_ids)
    while tail and tail[-1] not in report.stop_ids and not tok.decode([tail[-1]]).strip():
        tail.pop()
    stop_names = ", ".join(f"{tok.convert_ids_to_tokens(i)!r} ({i})" for i in report.stop_ids)
    if not tail or tail[-1] not in report.stop_ids:
        ending = tok.decode(completion_ids[-4:]) if completion_ids else ""
        report.warnings.append(
            f"the rendered training completion ends with {ending!r}, not with a token generation stops on "
            f"[{stop_names}]: the student never learns to stop and every sample runs to max_new_tokens. End the "
            f"assistant turn with the eos token in the chat template, or set tokenizer.eos_token / "
            f"generation_config.eos_token_id to the token that ends the turn")
    else:
        report.notes.append(f"rendered completions end with a stop token ({tok.convert_ids_to_tokens(tail[-1])!r})")


# ---------------------------------------------------------------------------
# (c) mixed losses


def check_losses(losses: Mapping[str, float], report: PreflightReport, *, max_ratio: float = 100.0) -> None:
    """Warn when loss terms differ by more than ``max_ratio``; suggest balancing weights."""
    mags: dict[str, float] = {}
    for name, value in losses.items():
        v = float(value.item() if hasattr(value, "item") else value)
        if not math.isfinite(v):
            report.warnings.append(f"loss '{name}' is {v} on the first batch")
        elif v == 0:
            report.warnings.append(f"loss '{name}' is 0 on the first batch: it contributes no gradient")
        else:
            mags[name] = abs(v)
    if len(mags) < 2:
        return
    hi_name = max(mags, key=mags.get)
    lo_name = min(mags, key=mags.get)
    ratio = mags[hi_name] / mags[lo_name]
    listing = ", ".join(f"{k}={v:.4g}" for k, v in mags.items())
    if ratio > max_ratio:
        report.suggested_weights = {k: mags[hi_name] / v for k, v in mags.items()}
        report.warnings.append(
            f"loss terms differ {ratio:.0f}x on the first batch ({listing}): '{lo_name}' barely moves training. "
            f"Weight it by about {report.suggested_weights[lo_name]:.3g} (or '{hi_name}' by "
            f"{1 / report.suggested_weights[lo_name]:.3g}) to balance them")
    else:
        report.notes.append(f"loss terms within {ratio:.1f}x of each other ({listing})")


class FirstBatchLossCheck:
    """:func:`check_losses` on the first training batch a trainer computes, once; its findings
    go into ``report`` (and so into the train manifest) and to the log."""

    def __init__(self, report: PreflightReport, *, max_ratio: float = 100.0) -> None:
        self.report = report
        self.max_ratio = max_ratio
        self.done = False

    def __call__(self, losses: Mapping[str, Any]) -> None:
        if self.done:
            return
        self.done = True
        seen = len(self.report.warnings)
        check_losses(losses, self.report, max_ratio=self.max_ratio)
        for warning in self.report.warnings[seen:]:
            log.warning("preflight: %s", warning)
