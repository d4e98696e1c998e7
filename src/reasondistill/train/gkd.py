"""On-policy distillation: generalised knowledge distillation (GKD, Agarwal et al. 2024).

Each training sequence is, with probability ``lmbda``, replaced by a completion the student
samples from its own current distribution (at ``temperature``) for the same prompt; otherwise
it is the curated teacher trace from ``train.jsonl``. A live teacher then scores every
sequence, and at each completion position the student's next-token distribution is pulled
toward the teacher's by ``loss``, a name of the loss table (``train/losses``; by default the
generalised JSD of ``jsd.py``, ``beta``: 0 forward KL, 1 reverse KL), both softened by
``temperature``. Training on its own samples teaches the student what to do after its own
mistakes, which cached traces never show it.

Why not TRL's ``trl.experimental.gkd.GKDTrainer``: in trl 1.16 it (1) applies ``temperature``
to sampling only, never to the loss; (2) refuses any ``vocab_size`` difference, so a teacher
with padded embedding rows cannot be truncated to the shared vocabulary; (3) normalises an
on-policy batch's loss by the token count of the cached batch it replaced (``num_items_in_batch``
is counted before generation); (4) swaps whole batches, with nothing to count what was
sampled; and it sits under ``experimental`` behind an SFTTrainer/ChatML-collator stack. This
file is a small ``transformers.Trainer`` subclass instead, in the shape of ``kd.py``.

Vocabularies: :func:`reasondistill.train.preflight.preflight` runs on tokenizers and configs
before any weights load; a teacher with another vocabulary is a :class:`ConfigError` that
suggests sequence-level distillation (SFT on teacher traces). Padded output rows are handled
by comparing logits over the shared rows only; if the student has the extra rows, it is kept
from sampling ids the teacher has no logit for. Loading, LoRA, the checkpoint, loss log and
manifest are :mod:`.base`'s.

Served teacher: ``gkd.teacher`` may be a teacher config (``{backend: openai, model, options}``,
:mod:`.served_teacher`) instead of a model name. Each batch's sequences are then scored by
``Backend.score``: as token ids where the backend scores ids (transformers, vllm, llamacpp; openai with
``score_ids``), else as the example's prompt and the completion decoded up to its first stop
token; the teacher's top ``teacher_top_k`` logprobs plus a tail bucket are the target (the
sparse form of the loss table, as offline KD). Where the teacher's tokens of a decoded text stop
matching the student's ids (a different split of the same text), the rest of that sequence has
no target and is left out of the loss; ``teacher_uncovered_tokens`` counts them.
A determinism self-test on the first examples runs before the student loads.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
from pathlib import Path
from typing import Any

from .. import models
from ..config import TrainConfig
from ..backends.base import ScoreItem
from ..errors import ConfigError, InputError
from ..records import TrainExample
from . import base, served_teacher
from .gkd_config import GKDObjectiveConfig
from .losses import configured_loss
from .preflight import output_rows, stop_token_ids

log = logging.getLogger(__name__)

COUNTS = ("on_policy_seqs", "cached_seqs", "on_policy_tokens", "cached_tokens")
SERVED_COUNTS = ("teacher_covered_tokens", "teacher_uncovered_tokens")


# ---------------------------------------------------------------------------
# data: prompt and cached completion ids per example


def tokenize(examples: list[TrainExample], tokenizer: Any, max_length: int,
             path: str | Path = "<train>") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One ``{"prompt", "completion"}`` pair of id tensors per example, and counts.

    The prompt is rendered with the student's chat template and the generation prompt, the
    completion is the rest of the rendered conversation (as SFT and KD train on it), cut so
    that prompt + completion fit ``max_length``.
    """
    import torch

    features, n_truncated = [], 0
    for line, ex in enumerate(examples, 1):
        prompt_ids, full_ids = base.encode_pair(tokenizer, ex.prompt, ex.completion, path=path, line=line)
        n_prompt = len(prompt_ids)
        if n_prompt >= max_length:
            raise InputError(f"the prompt alone is {n_prompt} tokens, >= train.max_length={max_length}; no "
                             f"completion token would be trained", file=path, line=line, field="prompt")
        n_truncated += len(full_ids) > max_length
        features.append({"prompt": torch.tensor(prompt_ids, dtype=torch.long),
                         "completion": torch.tensor(full_ids[n_prompt:max_length], dtype=torch.long),
                         "row": torch.tensor(line - 1)})  # which example: a served teacher needs its messages
    return features, {"n_truncated": n_truncated}


class Collator:
    """Batches :func:`tokenize` features: prompts left-padded (ready for ``generate``),
    cached completions right-padded, each with its mask."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        prompt_ids, prompt_mask = pad([f["prompt"] for f in features], self.pad_token_id, left=True)
        completion_ids, completion_mask = pad([f["completion"] for f in features], self.pad_token_id)
        batch = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
                 "completion_ids": completion_ids, "completion_mask": completion_mask}
        if all("row" in f for f in features):
            batch["rows"] = torch.stack([f["row"] for f in features])
        return batch


def pad(rows: list[Any], value: int, *, left: bool = False) -> tuple[Any, Any]:
    """``(ids [B, W], mask [B, W])`` from 1-d id tensors of varied length (:func:`.base.pad_batch`)."""
    batch = base.pad_batch([{"input_ids": r} for r in rows], {"input_ids": value}, left=left)
    return batch["input_ids"], batch["attention_mask"]


# ---------------------------------------------------------------------------
# trainer


class OnPolicyBatches:
    """What the GKD trainer (:func:`_trainer_class`) adds to ``transformers.Trainer`` besides its
    loss: each batch's share ``lmbda`` of sequences swapped for student samples, and counted; a
    served teacher's sparse targets; the state a resumed run needs. A mixin listed before
    ``Trainer`` (its ``super()`` calls reach the Trainer), so importing this module loads no torch."""

    def __init__(self, *args: Any, teacher: Any, gkd_cfg: GKDObjectiveConfig, stop_ids: list[int],
                 shared_vocab: int, max_length: int, suppress_ids: list[int] | None = None, seed: int = 0,
                 teacher_backend: Any = None, prompts: list[Any] | None = None, **kwargs: Any) -> None:
        from transformers import GenerationConfig

        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None
        self.teacher_backend = teacher_backend  # a served teacher: targets through Backend.score
        self.prompts = prompts or []  # each example's prompt messages (served teacher)
        self.served_counts = dict.fromkeys(SERVED_COUNTS, 0)
        self.gkd_cfg = gkd_cfg
        self.loss_fn = configured_loss(gkd_cfg)
        self.stop_ids = list(stop_ids)
        self.shared_vocab = shared_vocab
        self.max_length = max_length
        self.rng = random.Random(seed)  # which sequences are sampled: reproducible per seed
        # every sampling knob set explicitly, so none is inherited from the model's generation_config:
        # the samples come from softmax(logits / temperature), the distribution the loss compares
        self.generation_config = GenerationConfig(
            do_sample=True, temperature=gkd_cfg.temperature, top_k=0, top_p=1.0, repetition_penalty=1.0,
            max_new_tokens=gkd_cfg.max_new_tokens, pad_token_id=self.processing_class.pad_token_id,
            eos_token_id=self.stop_ids or None, suppress_tokens=list(suppress_ids or []) or None)
        self.counts = dict.fromkeys(COUNTS, 0)
        self._window = dict.fromkeys(COUNTS, 0)

    # -- resuming (train/checkpoints.py): what the Trainer's checkpoint does not hold

    def resume_state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss], "counts": self.counts, "window": self._window,
                "served_counts": self.served_counts}

    def restore_state(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.counts, self._window = dict(state["counts"]), dict(state["window"])
        self.served_counts = dict(state["served_counts"])

    # -- batch: cached completions, some replaced by student samples

    def training_step(self, model, inputs, num_items_in_batch=None):
        batch = self.mix(model, inputs)
        super()._track_num_input_tokens(batch)  # the rows trained on: a step's cost is 6 N times these
        return super().training_step(model, batch, num_items_in_batch)

    def _track_num_input_tokens(self, inputs):
        """The Trainer counts the batch its loader yields: here prompts and cached completions, not the
        rows trained on (a sampled completion replaces a cached one). Those are counted in
        :meth:`training_step` instead, non-padding as every objective counts them."""
        if "input_ids" in inputs:
            super()._track_num_input_tokens(inputs)

    def mix(self, model, inputs: dict[str, Any]) -> dict[str, Any]:
        device = self.args.device
        prompts = [p[m.bool()].to(device) for p, m in zip(inputs["prompt_ids"], inputs["prompt_mask"])]
        completions = [c[m.bool()].to(device)
                       for c, m in zip(inputs["completion_ids"], inputs["completion_mask"])]
        on_policy = [self.rng.random() < self.gkd_cfg.lmbda for _ in prompts]  # lmbda=0: never, 1: always
        rows = [i for i, on in enumerate(on_policy) if on]
        if rows:
            for i, sampled in zip(rows, self.sample(model, [prompts[i] for i in rows])):
                completions[i] = sampled
        for on, c in zip(on_policy, completions):
            kind = "on_policy" if on else "cached"
            for counter in (self.counts, self._window):
                counter[f"{kind}_seqs"] += 1
                counter[f"{kind}_tokens"] += len(c)
        batch = self.assemble(prompts, completions, self.processing_class.pad_token_id)
        if "rows" in inputs:
            batch["rows"] = inputs["rows"]
        return batch

    def sample(self, model, prompts: list[Any]) -> list[Any]:
        """The student's completions for ``prompts``: up to and including the first stop token,
        at most ``max_new_tokens`` and within ``max_length`` with the prompt."""
        import torch

        pad_id = self.processing_class.pad_token_id
        ids, mask = pad(prompts, pad_id, left=True)
        gen_cfg = copy.deepcopy(self.generation_config)
        gen_cfg.max_new_tokens = min(self.gkd_cfg.max_new_tokens, self.max_length - min(map(len, prompts)))
        student = self.accelerator.unwrap_model(model)
        was_training = student.training
        student.eval()
        try:
            with torch.no_grad():
                out = student.generate(input_ids=ids, attention_mask=mask, generation_config=gen_cfg)
        finally:
            student.train(was_training)
        new = out[:, ids.shape[1]:]
        stops = torch.tensor(self.stop_ids, device=new.device)
        completions = []
        for p, row in zip(prompts, new):
            hits = torch.isin(row, stops).nonzero()
            end = int(hits[0]) + 1 if len(hits) else len(row)
            completions.append(row[:min(end, self.max_length - len(p))])
        return completions

    @staticmethod
    def assemble(prompts: list[Any], completions: list[Any], pad_id: int = 0) -> dict[str, Any]:
        """Right-padded ``prompt + completion`` rows; ``loss_mask`` marks the logits that predict a
        completion token (position ``p`` predicts token ``p + 1``)."""
        import torch

        seqs = [torch.cat([p, c]) for p, c in zip(prompts, completions)]
        input_ids, attention_mask = pad(seqs, pad_id)
        loss_mask = torch.zeros_like(input_ids, dtype=torch.bool)
        for i, (p, c) in enumerate(zip(prompts, completions)):
            loss_mask[i, len(p) - 1:len(p) - 1 + len(c)] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask, "loss_mask": loss_mask}

    # -- a served teacher's targets

    def served_targets(self, ids, loss_mask, rows, device):
        """The served teacher's sparse targets at every completion position, row-major as the
        student's logits, and which positions have one (:mod:`.served_teacher`)."""
        import torch

        from ..logprobs import from_completion_logprobs
        from .losses.base import SparseTeacher

        k, tok = self.gkd_cfg.teacher_top_k, self.processing_class
        completions, items = [], []
        for b in range(ids.shape[0]):
            pos = loss_mask[b].nonzero().squeeze(-1)
            comp = ids[b, pos + 1].tolist()
            end = next((j for j, t in enumerate(comp) if t in self.stop_ids), len(comp))
            text = tok.decode(comp[:end], skip_special_tokens=True)
            completions.append(comp)
            prompt_ids = tuple(ids[b, :int(pos[0]) + 1].tolist())
            items.append(ScoreItem(self.prompts[int(rows[b])], text, prompt_ids=prompt_ids,
                                   completion_ids=tuple(comp)))
        results = self.teacher_backend.score(items, k)
        n = sum(map(len, completions))
        t_ids = torch.zeros((n, k), dtype=torch.long)
        t_lp = torch.zeros((n, k))
        t_tail = torch.zeros(n)
        covered = torch.zeros(n, dtype=torch.bool)
        at = 0
        for comp, result in zip(completions, results):
            m = served_teacher.aligned(result, comp)
            if m:
                _, top_ids, top_lp, tail = from_completion_logprobs(result.logprobs[:m], k)
                if int(top_ids.max()) >= self.shared_vocab:
                    raise ConfigError(
                        f"gkd.teacher returned token id {int(top_ids.max())}, beyond the student's "
                        f"{self.shared_vocab} output rows: teacher and student must share a tokenizer")
                t_ids[at:at + m] = torch.from_numpy(top_ids)
                t_lp[at:at + m] = torch.from_numpy(top_lp)
                t_tail[at:at + m] = torch.from_numpy(tail)
                covered[at:at + m] = True
            at += len(comp)
        self.served_counts["teacher_covered_tokens"] += int(covered.sum())
        self.served_counts["teacher_uncovered_tokens"] += n - int(covered.sum())
        teacher = SparseTeacher(t_ids[None].to(device), t_lp[None].to(device), t_tail[None].to(device))
        return teacher, covered.to(device)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            w = self._window
            seqs = w["on_policy_seqs"] + w["cached_seqs"]
            if seqs:
                logs["on_policy_frac"] = round(w["on_policy_seqs"] / seqs, 4)
            if w["on_policy_seqs"]:
                logs["sampled_len"] = round(w["on_policy_tokens"] / w["on_policy_seqs"], 2)
            self._window = dict.fromkeys(COUNTS, 0)
        super().log(logs, start_time)


def _trainer_class():
    import torch
    from transformers import Trainer

    from .losses.base import SparseTeacher

    class GKDTrainer(OnPolicyBatches, Trainer):
        """``Trainer`` that swaps a share ``lmbda`` of each batch's sequences for student samples,
        then trains every completion token on ``gkd_cfg.loss`` to a live teacher."""

        loss_is_scaled_for_ga = False  # per-batch token means: the Trainer divides by grad_accum

        # -- loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids, attn, sel = inputs["input_ids"], inputs["attention_mask"], inputs["loss_mask"]
            # the LM head runs only at the completion positions, a chunk of them at a time (lean_head)
            from . import lean_head  # imports torch: only when training, not when a finished run is reused
            rows, head = lean_head.completion_hidden(model, ids, attn, sel)
            if self.teacher_backend is not None:
                teacher, covered = self.served_targets(ids, sel, inputs["rows"], rows.device)
                teacher = SparseTeacher(*(t[0] for t in teacher))  # one row per completion position, as `rows`
            else:
                with torch.no_grad():
                    teacher = live_teacher_logits(self.teacher, ids, attn, sel, rows.device)
                covered = None
            loss = distill_mean(self.loss_fn, self.gkd_cfg.temperature, rows, head, teacher, covered, self.shared_vocab)
            return (loss, {}) if return_outputs else loss

    return GKDTrainer


def live_teacher_logits(teacher, ids, attn, sel, device):
    """A live teacher's logits at the completion positions ``sel``, one chunk at a time: a callable
    ``at -> [n, V]`` (the head applied to those rows only, in the autocast dtype where one is on)."""
    import torch
    import torch.nn.functional as F

    from . import lean_head  # imports torch: only when training, not when a finished run is reused
    rows, head = lean_head.completion_hidden(teacher, ids, attn, sel)
    rows = rows.to(device)
    if head is None:
        return lambda at: rows[at]
    weight, bias = head.weight, head.bias
    if torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
        rows, weight, bias = rows.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)
    return lambda at: F.linear(rows[at], weight, bias)


def distill_mean(loss_fn, temperature: float, rows, head, teacher, covered, shared_vocab: int):
    """``loss_fn``'s token mean over the completion positions (those ``covered`` by a teacher
    target; ``None``: all), comparing the first ``shared_vocab`` logits: ``rows``/``head`` from
    :func:`.lean_head.completion_hidden`, ``teacher`` a per-row :class:`SparseTeacher` or a
    callable giving the live teacher's logits of some rows (:func:`live_teacher_logits`)."""
    import torch

    from .losses.base import SparseTeacher

    n = rows.shape[0]
    covered = torch.ones(n, dtype=torch.bool, device=rows.device) if covered is None else covered

    def total(z, at):
        student = z[:, :shared_vocab].unsqueeze(0)
        if isinstance(teacher, SparseTeacher):
            target = SparseTeacher(*(t[at].unsqueeze(0) for t in teacher))
        else:
            target = teacher(at)[:, :shared_vocab].unsqueeze(0)
        mask = covered[at].unsqueeze(0)
        return loss_fn(student, target, mask, temperature) * mask.sum()

    from . import lean_head  # imports torch: only when training, not when a finished run is reused
    return lean_head.loss_over(rows, head, total) / covered.sum().clamp_min(1)


def check_vocabulary(cfg: TrainConfig, gkd_cfg: GKDObjectiveConfig, example: Any = None):
    """Resolve both models and run the preflight on tokenizers and configs (no weights).
    Returns ``(student_ref, teacher_ref, student_tokenizer, report)``; a vocabulary mismatch
    is a :class:`ConfigError` suggesting sequence-level distillation."""
    return base.teacher_preflight(cfg, gkd_cfg.teacher, section="gkd.teacher", example=example)


def train(cfg: TrainConfig, gkd_cfg: GKDObjectiveConfig, examples: list[TrainExample], out_dir: Path,
          train_path: str | Path = "<train>"):
    """Distil in memory. Returns ``(model, tokenizer, train_output, log_history, info)``; a LoRA
    model comes back merged into plain weights. The vocabulary preflight (a served teacher: its
    determinism self-test) and every data check run before any weights load."""
    if served_teacher.is_served(gkd_cfg.teacher):
        return train_served(cfg, gkd_cfg, examples, out_dir, train_path)
    s_ref, t_ref, tok, report = check_vocabulary(cfg, gkd_cfg, examples[0] if examples else None)
    features, counts = tokenize(examples, tok, cfg.max_length, train_path)
    model, device, use_bf16 = base.load_student(cfg, s_ref.path)
    teacher = models.load_model(t_ref.path, dtype=gkd_cfg.teacher_dtype, device=device,
                                trust_remote_code=cfg.trust_remote_code)
    # the loaded heads are authoritative: compare logits over the rows both models have
    s_rows, t_rows = output_rows(model), output_rows(teacher)
    shared = min(s_rows, t_rows)
    suppress = list(range(shared, s_rows))  # student-only padded rows: the teacher has no logit for them
    stop_ids = stop_token_ids(tok, model)
    trainer = base.trainer(_trainer_class(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                           train_dataset=features, data_collator=Collator(tok.pad_token_id), teacher=teacher,
                           gkd_cfg=gkd_cfg, stop_ids=stop_ids, shared_vocab=shared, max_length=cfg.max_length,
                           suppress_ids=suppress, seed=cfg.seed)
    model, result, history = base.fit(trainer, cfg, out_dir)
    info = {"teacher": t_ref.identity, "student_rows": s_rows, "teacher_rows": t_rows, "shared_vocab": shared}
    return model, tok, result, history, summary(trainer, examples, s_ref, use_bf16, counts, stop_ids, report, info)


def train_served(cfg: TrainConfig, gkd_cfg: GKDObjectiveConfig, examples: list[TrainExample], out_dir: Path,
                 train_path: str | Path = "<train>"):
    """:func:`train` with a teacher config: targets come through ``Backend.score``."""
    from .preflight import preflight

    s_ref, tok = base.student_tokenizer(cfg)
    report = base.log_report(preflight(tok, example=examples[0] if examples else None))
    features, counts = tokenize(examples, tok, cfg.max_length, train_path)
    items = [served_teacher.score_item(ex, train_path, line) for line, ex in enumerate(examples, 1)]
    backend = served_teacher.open_teacher(gkd_cfg.teacher, "gkd.teacher", tok)
    try:
        selftest = served_teacher.check_determinism(backend, items, gkd_cfg.score_tolerance)
        model, device, use_bf16 = base.load_student(cfg, s_ref.path)
        rows = output_rows(model)
        stop_ids = stop_token_ids(tok, model)
        trainer = base.trainer(_trainer_class(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                               train_dataset=features, data_collator=Collator(tok.pad_token_id), teacher=None,
                               teacher_backend=backend, prompts=[it.prompt for it in items], gkd_cfg=gkd_cfg,
                               stop_ids=stop_ids, shared_vocab=rows, max_length=cfg.max_length, seed=cfg.seed)
        model, result, history = base.fit(trainer, cfg, out_dir)
        info = {"teacher": backend.identity, "teacher_selftest": selftest, "teacher_top_k": gkd_cfg.teacher_top_k,
                "student_rows": rows, "shared_vocab": rows, **trainer.served_counts}
    finally:
        backend.close()
    return model, tok, result, history, summary(trainer, examples, s_ref, use_bf16, counts, stop_ids, report, info)


def summary(trainer, examples, s_ref, use_bf16, counts, stop_ids, report, info) -> dict[str, Any]:
    """The manifest's outputs of a GKD run."""
    seen = trainer.counts
    return {"n_examples": len(examples), "student": s_ref.identity, "bf16": use_bf16, **counts, **seen,
            "mean_sampled_len": round(seen["on_policy_tokens"] / seen["on_policy_seqs"], 2)
            if seen["on_policy_seqs"] else None, **info, "stop_ids": stop_ids, "preflight": report.to_dict()}


def run(train_cfg: TrainConfig, gkd_cfg: GKDObjectiveConfig, train_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Distil ``train_cfg.student`` on-policy toward ``gkd_cfg.teacher``, with the curated traces in
    ``train_path`` as the cached share; save ``out_dir/model`` (safetensors), ``loss.jsonl`` and
    the manifest. A finished run with the same config and inputs is skipped."""
    config = {"train": dataclasses.asdict(train_cfg), "gkd": dataclasses.asdict(gkd_cfg)}
    return base.cached_run(out_dir, "gkd", config, [train_path],
                           lambda: train(train_cfg, gkd_cfg, base.load_examples(train_path), Path(out_dir), train_path))


__all__ = ["GKDObjectiveConfig", "run", "train", "tokenize", "check_vocabulary", "Collator"]
