"""Distilling step-by-step (Hsieh et al., 2023): rationales as a second training task.

Every curated example becomes two sequences for the student, told apart by a task prefix on the
user message:

- ``[label] <prompt>`` -> the final-answer line only (``Answer: 42``);
- ``[rationale] <prompt>`` -> the teacher's full rationale (reasoning and answer line).

Both are trained together with ``loss = (1 - w) * L_label + w * L_rationale``
(``w = MultiTaskConfig.rationale_weight``), each ``L`` the mean token cross-entropy over that
task's completion tokens in the batch. The paper writes ``L_label + lambda * L_rationale``; the
convex form has the same minimisers (``lambda = w / (1 - w)``) and keeps the loss on SFT's scale.
Each example contributes both of its sequences to the same batch, so every step sees both tasks
for the same problems and the weighting is exact per batch, not only in expectation. A task
weighted 0 is not run at all (``w = 0``: direct answers only; ``w = 1``: SFT on rationales under
the rationale prefix).

At inference the ``[label]`` prefix asks for a direct answer (cheap: no rationale tokens) and
the ``[rationale]`` prefix for the full chain of thought; evaluation must put the prefix on the
prompt (see :func:`task_messages`). Examples whose completion has no final-answer line
(``Answer:`` / ``\\boxed{}``) get no label sequence; the manifest counts them.

A plain ``transformers.Trainer`` runs the optimisation: TRL's SFTTrainer has no notion of a
per-example task. Tokenisation is SFT's (:func:`.base.encode_pair`: prompt rendered with the chat
template's generation prompt, loss on the rest).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError
from ..records import TrainExample
from ..prompts import format_answer, with_task_prefix
from ..grading.answers import extract_answer
from . import base
from .base import IGNORE
from .preflight import FirstBatchLossCheck, preflight

log = logging.getLogger(__name__)

TASKS = ("label", "rationale")  # task index 0, 1 in batches


@dataclass
class MultiTaskConfig:
    """Task prefixes and the weight between the label and rationale losses."""

    rationale_weight: float = 0.5  # loss = (1 - w) * label loss + w * rationale loss
    label_prefix: str = "[label] "  # prepended to the user message of the answer-only task
    rationale_prefix: str = "[rationale] "  # prepended to the user message of the rationale task

    def __post_init__(self) -> None:
        if not 0.0 <= self.rationale_weight <= 1.0:
            raise ConfigError(f"multitask.rationale_weight must be in [0, 1], got {self.rationale_weight}")
        if not self.label_prefix.strip() or not self.rationale_prefix.strip():
            raise ConfigError("multitask.label_prefix and multitask.rationale_prefix must be non-empty")
        if self.label_prefix.strip() == self.rationale_prefix.strip():
            raise ConfigError("multitask.label_prefix and multitask.rationale_prefix must differ")


def task_messages(messages: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    """``messages`` with ``prefix`` prepended to the last user message (for training and inference)."""
    try:
        return with_task_prefix(messages, prefix)
    except ValueError as e:
        raise ConfigError(f"a multitask prompt needs a user message to put the task prefix on ({e})") from None


def eval_prefix(cfg: MultiTaskConfig, task: str) -> str:
    """The prefix that asks a trained multi-task student for ``task`` ("rationale" or "label")."""
    return task_prefixes(cfg)[task]


def task_prefixes(cfg: MultiTaskConfig) -> dict[str, str]:
    """The objective's prompt hook (``OBJECTIVES['multitask'].prompts``): how to ask for each task."""
    return {"rationale": cfg.rationale_prefix, "label": cfg.label_prefix}


def build_tasks(examples: list[TrainExample], cfg: MultiTaskConfig) -> list[dict[str, Any]]:
    """Per example: ``{"label": (prompt, completion) | None, "rationale": (prompt, completion)}``."""
    rows = []
    for ex in examples:
        text = ex.completion[-1]["content"]
        answer, formatted = extract_answer(text, fallback_last_number=False)
        label = None
        if formatted and answer:
            label = (task_messages(ex.prompt, cfg.label_prefix),
                     [{"role": "assistant", "content": format_answer(answer)}])
        rationale = (task_messages(ex.prompt, cfg.rationale_prefix), [dict(m) for m in ex.completion])
        rows.append({"label": label, "rationale": rationale})
    return rows


# ---------------------------------------------------------------------------
# tokenisation and batching


def encode_tasks(tok, rows: list[dict[str, Any]], max_length: int, tasks: tuple[str, ...] = TASKS,
                 path: str | Path = "<train>") -> list[dict[str, Any]]:
    """Per example and task, SFT's ``{"input_ids", "labels"}`` (:func:`.base.supervised`), or ``None``
    for a task not in ``tasks`` (weight 0) or whose prompt alone fills ``max_length``; examples with
    neither task left are dropped."""
    out = []
    for line, row in enumerate(rows, 1):
        enc = {}
        for task in TASKS:
            pair = row[task] if task in tasks else None
            if pair is not None:
                prompt_ids, full_ids = base.encode_pair(tok, pair[0], pair[1], path=path, line=line,
                                                        what=f"{task} task: ")
                pair = base.supervised(prompt_ids, full_ids, max_length)
            enc[task] = pair
        if enc["rationale"] is not None or enc["label"] is not None:
            out.append(enc)
    return out


class TaskCollator:
    """Expands each example into its label and rationale sequences, right-padded, with a ``task`` index."""

    def __init__(self, pad_id: int) -> None:
        self.pad = {"input_ids": pad_id, "labels": IGNORE}

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        seqs = [(enc[task], t) for enc in rows for t, task in enumerate(TASKS) if enc[task] is not None]
        batch = base.pad_batch([f for f, _ in seqs], self.pad)
        batch["task"] = torch.tensor([t for _, t in seqs], dtype=torch.long)
        return batch


def multitask_loss(logits, labels, task, rationale_weight: float):
    """``((1 - w) * L_label + w * L_rationale, {"label": L_label, "rationale": L_rationale})``.

    ``L_t`` is the mean next-token cross-entropy over task ``t``'s unmasked label tokens; a task
    absent from the batch has no entry and adds nothing (so the estimate stays unbiased).
    """
    import torch
    import torch.nn.functional as F

    shift_logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    per_token = F.cross_entropy(shift_logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
    mask = targets != IGNORE
    weights = {"label": 1.0 - rationale_weight, "rationale": rationale_weight}
    parts: dict[str, torch.Tensor] = {}
    for t, name in enumerate(TASKS):
        m = mask & (task == t).unsqueeze(1)
        n = m.sum()
        if n > 0:
            parts[name] = (per_token * m).sum() / n
    if not parts:  # no label token at all: a zero that stays connected to the graph
        return logits[..., :1].sum() * 0.0, parts
    return sum(weights[name] * value for name, value in parts.items()), parts


def _trainer_cls():
    from transformers import Trainer

    class MultiTaskTrainer(base.LoggedParts, Trainer):
        """Trainer whose loss weights each sequence's tokens by its task (see :func:`multitask_loss`)."""

        loss_is_scaled_for_ga = False  # a per-batch mean: Trainer divides by the accumulation steps

        def __init__(self, *args, rationale_weight: float, loss_check=None, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.rationale_weight = rationale_weight
            self.loss_check = loss_check  # preflight of the label-vs-rationale scales

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            task, labels = inputs.pop("task"), inputs.pop("labels")
            outputs = model(**inputs)
            loss, parts = multitask_loss(outputs.logits, labels, task, self.rationale_weight)
            if model.training and self.loss_check is not None and len(parts) == len(TASKS):
                self.loss_check({name: float(value.detach()) for name, value in parts.items()})
            if model.training:
                self.record(**{f"{name}_loss": value for name, value in parts.items()})
            return (loss, outputs) if return_outputs else loss

    return MultiTaskTrainer


def train(cfg: TrainConfig, mt_cfg: MultiTaskConfig, examples: list[TrainExample], out_dir: Path,
          train_path: str | Path = "<train>"):
    """Train in memory. Returns ``(model, tokenizer, train_output, log_history, info)``; a LoRA
    model comes back merged into plain weights. ``train.batch_size`` counts examples; each brings
    a label and a rationale sequence."""
    ref, tok = base.student_tokenizer(cfg)
    rows = build_tasks(examples, mt_cfg)
    weights = {"label": 1.0 - mt_cfg.rationale_weight, "rationale": mt_cfg.rationale_weight}
    encoded = encode_tasks(tok, rows, cfg.max_length, tuple(t for t in TASKS if weights[t] > 0), train_path)
    if not encoded:
        raise ConfigError(f"no trainable sequence: every prompt fills train.max_length = {cfg.max_length}")
    prompt, completion = rows[0]["rationale"]
    report = base.log_report(preflight(tok, example={"prompt": prompt, "completion": completion}))
    model, device, use_bf16 = base.load_student(cfg, ref.path)
    trainer = base.trainer(_trainer_cls(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                           train_dataset=encoded, data_collator=TaskCollator(tok.pad_token_id),
                           rationale_weight=mt_cfg.rationale_weight, loss_check=FirstBatchLossCheck(report))
    model, result, history = base.fit(trainer, cfg, out_dir)
    info = {"n_examples": len(examples), "student": ref.identity, "bf16": use_bf16,
            "n_label": sum(e["label"] is not None for e in encoded),
            "n_rationale": sum(e["rationale"] is not None for e in encoded),
            "n_without_answer_line": sum(r["label"] is None for r in rows),
            "label_prefix": mt_cfg.label_prefix, "rationale_prefix": mt_cfg.rationale_prefix,
            "preflight": report.to_dict()}
    return model, tok, result, history, info


def run(train_cfg: TrainConfig, mt_cfg: MultiTaskConfig, train_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Train ``train_cfg.student`` on both tasks built from ``train_path`` (curated TrainExamples)
    and save ``out_dir/model``. A finished run with the same config and inputs is skipped."""
    config = {"train": dataclasses.asdict(train_cfg), "multitask": dataclasses.asdict(mt_cfg)}
    return base.cached_run(out_dir, "multitask", config, [train_path],
                           lambda: train(train_cfg, mt_cfg, base.load_examples(train_path), Path(out_dir), train_path))
