"""Offline token-level knowledge distillation from cached teacher top-k logprobs.

The teacher ran once, at generation time, and its top-k logprobs for every token it
wrote sit in a logprob store (``logprobs.py``). Training then needs no
teacher in memory: each curated example (``TrainExample``, whose ``meta.trace_id`` names
its trace) is tokenized with the student's chat template, its completion tokens are
checked against the ids the teacher generated, and at each of those positions the
student's next-token distribution is pulled toward the teacher's sparse one (k ids
plus a tail bucket) by a loss from ``train/losses``, optionally mixed with the usual
cross-entropy on the completion.

With ``kd.teacher`` (a teacher config) the store is this run's own: the curated examples are
scored by that teacher backend (a server via echo + logprobs, or a model in-process) after its
determinism self-test, each text once across runs (the score cache), and written next to the
checkpoint; the generating backend then needs no logprobs at all.

TRL's ``GKDTrainer`` does the same with a live teacher and full-vocabulary logits;
there is no offline sparse variant in TRL, so this file wraps ``transformers.Trainer``
and overrides ``compute_loss``; the rest is :mod:`.base`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..records import TrainExample
from ..logprobs import LogprobReader, LogprobWriter
from . import base, served_teacher
from .base import IGNORE
from .preflight import FirstBatchLossCheck, preflight
from .kd_config import KDConfig
from .losses import configured_loss


log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# data: tokenized examples with the teacher's targets aligned to logit positions


def load_examples(path: str | Path, reader: LogprobReader) -> list[TrainExample]:
    """Curated examples; each must name a trace (``meta.trace_id``) present in the store."""
    examples = base.load_examples(path)
    for i, ex in enumerate(examples, 1):
        trace_id = ex.meta.get("trace_id")
        if not trace_id:
            raise InputError("no meta.trace_id: offline KD needs the trace behind each example",
                             file=path, line=i, field="meta.trace_id")
        if trace_id not in reader:
            raise InputError(f"trace {trace_id!r} has no teacher logprobs in {reader.path} "
                             f"(generate with top_logprobs > 0 and store them)", file=path, line=i,
                             field="meta.trace_id")
    return examples


def tokenize(examples: list[TrainExample], tokenizer: Any, reader: LogprobReader, top_k: int,
             max_length: int, path: str | Path = "<train>") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One feature dict of tensors per example, and counts.

    Position ``p`` of ``teacher_*`` / ``kd_mask`` holds the teacher's distribution for the
    token at ``p + 1``, the same position as the student's logits. The teacher's ids must
    be the first tokens of the tokenized completion (the rest is the chat template's
    end-of-turn); anything else raises an :class:`InputError` naming the trace.
    """
    import torch

    features, n_truncated, n_kd = [], 0, 0
    for line, ex in enumerate(examples, 1):
        trace_id = ex.meta["trace_id"]
        prompt_ids, full_ids = base.encode_pair(tokenizer, ex.prompt, ex.completion, path=path, line=line,
                                                what=f"trace {trace_id!r}: ")
        n_prompt = len(prompt_ids)
        completion = full_ids[n_prompt:]
        tokens, ids, lps, tail = reader.get(trace_id, k=top_k)
        n_teacher = len(tokens)
        if completion[:n_teacher] != tokens.tolist():
            at = next((j for j, (a, b) in enumerate(zip(completion, tokens.tolist())) if a != b),
                      min(len(completion), n_teacher))
            got = completion[at] if at < len(completion) else None
            want = int(tokens[at]) if at < n_teacher else None
            raise InputError(
                f"trace {trace_id!r}: the student's tokenized completion differs from the teacher's tokens at "
                f"completion token {at} (student {got!r} = {_piece(tokenizer, got)!r}, teacher {want!r} = "
                f"{_piece(tokenizer, want)!r}; {len(completion)} vs {n_teacher} tokens). Offline KD needs the "
                f"teacher's tokenizer and its completion text unchanged", file=path, line=line, field="completion")
        feature = base.supervised(prompt_ids, full_ids, max_length)
        if feature is None:
            raise InputError(f"trace {trace_id!r}: the prompt alone is {n_prompt} tokens, >= train.max_length="
                             f"{max_length}; no completion token would be trained", file=path, line=line,
                             field="prompt")
        n_truncated += len(full_ids) > max_length
        length = len(feature["input_ids"])
        # the teacher's step j predicts completion token j, i.e. the logits at position n_prompt - 1 + j
        n_steps = min(n_teacher, length - n_prompt + 1)
        pos = slice(n_prompt - 1, n_prompt - 1 + n_steps)
        t_ids = torch.zeros((length, top_k), dtype=torch.long)
        t_lp = torch.zeros((length, top_k), dtype=torch.float32)
        t_tail = torch.zeros(length, dtype=torch.float32)
        kd_mask = torch.zeros(length, dtype=torch.bool)
        t_ids[pos] = torch.from_numpy(ids[:n_steps])
        t_lp[pos] = torch.from_numpy(lps[:n_steps])
        t_tail[pos] = torch.from_numpy(tail[:n_steps])
        kd_mask[pos] = True
        n_kd += n_steps
        features.append({**feature, "teacher_ids": t_ids, "teacher_logprobs": t_lp, "teacher_tail": t_tail,
                         "kd_mask": kd_mask})
    return features, {"n_truncated": n_truncated, "n_kd_tokens": n_kd}


def _piece(tokenizer: Any, token_id: int | None) -> str | None:
    return None if token_id is None else tokenizer.convert_ids_to_tokens(int(token_id))


class Collator:
    """Right-pads a list of :func:`tokenize` features into a batch."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad = {"input_ids": pad_token_id, "labels": IGNORE, "teacher_ids": 0, "teacher_logprobs": 0.0,
                    "teacher_tail": 0.0, "kd_mask": False}

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return base.pad_batch(features, self.pad)


# ---------------------------------------------------------------------------
# trainer


def _trainer_class():
    from transformers import Trainer

    from .losses.base import SparseTeacher

    class KDTrainer(base.LoggedParts, Trainer):
        """``Trainer`` whose loss is ``(1 - ce_weight) * KD + ce_weight * CE``, per-batch means."""

        loss_is_scaled_for_ga = False  # per-batch means: the Trainer divides by grad_accum

        def __init__(self, *args: Any, kd_cfg: KDConfig, loss_check: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.kd_cfg = kd_cfg
            self.loss_check = loss_check  # preflight of the KD-vs-CE scales, when both are weighted
            self.loss_fn = configured_loss(kd_cfg)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sel = inputs["kd_mask"]
            targets = base.next_token_targets(inputs["labels"])
            need = sel | (targets != IGNORE)
            from . import lean_head  # imports torch: only when training, not when a finished run is reused
            rows, head = lean_head.completion_hidden(model, inputs["input_ids"], inputs["attention_mask"], need)
            teacher = SparseTeacher(inputs["teacher_ids"][need], inputs["teacher_logprobs"][need],
                                    inputs["teacher_tail"][need])  # row order of `rows`
            kd, ce = kd_and_ce(self.loss_fn, self.kd_cfg.temperature, rows, head, teacher, targets[need], sel[need])
            w = self.kd_cfg.ce_weight
            loss = kd if w == 0 else ce if w == 1 else (1 - w) * kd + w * ce
            if model.training and 0 < w < 1 and self.loss_check is not None:
                self.loss_check({"kd": float(kd.detach()), "ce": float(ce.detach())})
            if model.training:
                self.record(kd_loss=kd, ce_loss=ce)
            return (loss, {}) if return_outputs else loss

    return KDTrainer


def kd_and_ce(loss_fn, temperature: float, rows, head, teacher, targets, kd_rows):
    """``(kd, ce)`` over the trained positions, one row each: ``rows`` and ``head`` from
    :func:`.lean_head.completion_hidden`, ``teacher`` a sparse teacher per row (rows without a
    teacher distribution, ``~kd_rows``, hold zeros there), ``targets`` each row's next token
    (``IGNORE``: untrained).

    ``kd`` is ``loss_fn``'s token mean over the teacher's rows, with the completion tokens the
    teacher never scored joining it as cross-entropy (:func:`with_uncovered_targets`); ``ce`` is
    the cross-entropy's token mean over every trained row. Both are sums over positions divided by
    counts, so the logits exist one chunk at a time (:func:`.lean_head.chunked`)."""
    import torch
    import torch.nn.functional as F

    from .losses.base import SparseTeacher

    trained = targets != IGNORE
    uncovered = trained & ~kd_rows

    def sums(z, at):
        kr = kd_rows[at]
        student = z[kr].unsqueeze(0)
        mask = torch.ones(student.shape[:2], dtype=torch.bool, device=z.device)
        part = SparseTeacher(*(t[at][kr].unsqueeze(0) for t in teacher))
        kd_sum = loss_fn(student, part, mask, temperature) * kr.sum()
        ce_tok = F.cross_entropy(z.float(), targets[at].clamp_min(0), reduction="none")
        return torch.stack([kd_sum, (ce_tok * uncovered[at]).sum(), (ce_tok * trained[at]).sum()])

    from . import lean_head  # imports torch: only when training, not when a finished run is reused
    kd_sum, uncovered_sum, ce_sum = lean_head.loss_over(rows, head, sums)
    n_kd, n_unc = kd_rows.sum(), uncovered.sum()
    return (kd_sum + uncovered_sum) / (n_kd + n_unc).clamp_min(1), ce_sum / trained.sum().clamp_min(1)


def with_uncovered_targets(kd, logits, targets, kd_rows):
    """Completion tokens the teacher never scored (the chat template's end-of-turn after the
    teacher's last token) keep the label as their target, token-weighted into the KD term;
    without it a pure-KD student never learns to stop. ``logits`` ``[N, V]`` are rows of
    positions, ``targets`` their next tokens (``IGNORE`` if untrained), ``kd_rows`` the rows
    with a teacher distribution."""
    import torch.nn.functional as F

    uncovered = (targets != IGNORE) & ~kd_rows
    n_unc, n_kd = int(uncovered.sum()), int(kd_rows.sum())
    if n_unc == 0:
        return kd
    ce = F.cross_entropy(logits[uncovered].float(), targets[uncovered])
    return (kd * n_kd + ce * n_unc) / (n_kd + n_unc)


def open_store(kd_cfg: KDConfig, logprobs_path: str | Path) -> LogprobReader:
    reader = LogprobReader(logprobs_path)
    if kd_cfg.top_k > reader.k:
        raise ConfigError(f"kd.top_k = {kd_cfg.top_k} but the logprob store {reader.path} holds only the "
                          f"top {reader.k} per token; lower kd.top_k or regenerate with more top_logprobs")
    return reader


def train(cfg: TrainConfig, kd_cfg: KDConfig, examples: list[TrainExample], reader: LogprobReader,
          out_dir: Path, train_path: str | Path = "<train>"):
    """Distil in memory. Returns ``(model, tokenizer, train_output, log_history, info)``;
    a LoRA model comes back merged into plain weights. Every data check runs before the
    student is loaded."""
    ref, tok = base.student_tokenizer(cfg)
    features, counts = tokenize(examples, tok, reader, kd_cfg.top_k, cfg.max_length, train_path)
    report = base.log_report(preflight(tok, example=examples[0]))  # vocabulary: tokenize() matched every teacher id
    model, device, use_bf16 = base.load_student(cfg, ref.path)
    fast = base.speedups(model, cfg)
    rows = model.get_output_embeddings().weight.shape[0]
    if rows <= int(max(f["teacher_ids"].max() for f in features)):
        raise ConfigError(f"the logprob store has token ids beyond the student's vocabulary ({rows}); teacher and "
                          f"student must share a tokenizer")
    trainer = base.trainer(_trainer_class(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                           train_dataset=features, data_collator=Collator(tok.pad_token_id), kd_cfg=kd_cfg,
                           loss_check=FirstBatchLossCheck(report))
    model, result, history = base.fit(trainer, cfg, out_dir)
    info = {"n_examples": len(examples), **base.first_last(history, "kd_loss"), "store_k": reader.k,
            "store_bytes_per_token": round(reader.bytes_per_token(), 2), "student": ref.identity, "bf16": use_bf16,
            "preflight": report.to_dict(), **counts, **fast}
    return model, tok, result, history, info


TEACHER_STORE = "teacher_logprobs"  # the store a kd.teacher writes, inside the train stage's out_dir


def score_store(train_cfg: TrainConfig, kd_cfg: KDConfig, train_path: str | Path, store: Path) -> dict[str, Any]:
    """Score every curated example with ``kd_cfg.teacher`` into a logprob store at ``store`` (after
    the determinism self-test); returns what the manifest records about it."""
    from ..backends.score_cache import cached_score
    from ..models import cache_root

    examples = base.load_examples(train_path)
    items, trace_ids = [], []
    for line, ex in enumerate(examples, 1):
        if not ex.meta.get("trace_id"):
            raise InputError("no meta.trace_id: offline KD needs the trace behind each example", file=train_path,
                             line=line, field="meta.trace_id")
        items.append(served_teacher.score_item(ex, train_path, line))
        trace_ids.append(ex.meta["trace_id"])
    _, tok = base.student_tokenizer(train_cfg)
    backend = served_teacher.open_teacher(kd_cfg.teacher, "kd.teacher", tok)
    try:
        selftest = served_teacher.check_determinism(backend, items, kd_cfg.score_tolerance)
        results, scored_now = cached_score(backend, items, kd_cfg.top_k, cache_root() / "scores")
        identity = backend.identity
    finally:
        backend.close()
    with LogprobWriter(store, kd_cfg.top_k, vocab_size=len(tok)) as writer:
        for line, (trace_id, result) in enumerate(zip(trace_ids, results), 1):
            try:
                writer.add_completion(trace_id, result.logprobs)
            except ValueError as e:
                raise InputError(f"teacher scores of trace {trace_id!r}: {e}", file=train_path, line=line,
                                 field="completion") from None
    return {"teacher": identity, "teacher_selftest": selftest, "teacher_scored": scored_now,
            "teacher_scored_cached": len(items) - scored_now}


def run(train_cfg: TrainConfig, kd_cfg: KDConfig, train_path: str | Path, out_dir: str | Path, *,
        context: Any) -> dict:
    """Distil ``train_cfg.student`` on ``train_path`` toward the teacher logprobs in
    ``context.logprobs``; save ``out_dir/model`` (safetensors), ``loss.jsonl`` and the manifest."""
    served = kd_cfg.teacher is not None
    if not served and (context is None or context.logprobs is None):
        raise ConfigError("offline KD needs the teacher's logprob store (context.logprobs; generate with "
                          "generate.top_logprobs > 0) or a teacher to score the traces (kd.teacher)")
    logprobs = Path(out_dir) / TEACHER_STORE if served else context.logprobs
    config = {"train": dataclasses.asdict(train_cfg), "kd": dataclasses.asdict(kd_cfg)}

    def train_() -> base.TrainResult:
        scored = score_store(train_cfg, kd_cfg, train_path, Path(logprobs)) if served else {}
        reader = open_store(kd_cfg, logprobs)
        model, tok, result, history, info = train(train_cfg, kd_cfg, load_examples(train_path, reader), reader,
                                                   Path(out_dir), train_path)
        return model, tok, result, history, {**info, **scored}

    return base.cached_run(out_dir, "kd", config, [train_path] if served else [train_path, logprobs], train_)


__all__ = ["KDConfig", "run", "train", "tokenize", "load_examples", "open_store", "Collator"]
