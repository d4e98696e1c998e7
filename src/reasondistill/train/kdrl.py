"""KD + RL: GRPO on the verifier's rewards plus a reverse KL to a frozen teacher on the student's
own samples.

Per completion token the loss is ``GRPO policy loss + kl_weight * KL(student || teacher)``, with
the KL estimated on the tokens the student sampled (on-policy distillation). Rewards push the
student towards answers that verify; the KL keeps its distribution close to the teacher's where
it explores, which gives a dense per-token signal even on problems whose rewards are all equal.

How: TRL's GRPOTrainer already adds ``beta * KL(policy || reference)`` on the sampled tokens,
with the reference's log-probs computed once per generation batch under ``torch.no_grad``. The
teacher *is* that reference here: :class:`KDRLTrainer` builds the trainer with ``beta = 0`` (so
TRL loads no copy of the student as reference), then installs the frozen teacher as
``ref_model`` and sets ``beta = kl_weight``. Chosen over a separate KL term because it reuses,
unchanged, TRL's chunked log-prob head (no ``(batch, length, vocab)`` logits are materialised for
either model), its device placement and its ``kl`` metric, and because the estimator is the
right one: TRL's per-token term is ``k3 = r - log r - 1`` with ``r = p_teacher / p_student`` of
the sampled token, multiplied (``use_bias_correction_kl``, forced on here) by the importance
ratio ``p / p_old``, whose value is 1 but whose gradient is ``grad log p``. Its gradient is then
``(log p_student - log p_teacher) * grad log p_student``, whose expectation over the student's
samples is exactly the gradient of the reverse KL at each position (without the correction,
k3's gradient is that of the *forward* KL). An exact full-vocabulary KL per position would need
both models' full logits; the sampled estimator is what on-policy distillation uses.

Consequences: the KL is between temperature-scaled distributions (TRL scores both models at the
sampling temperature; at ``temperature=1`` it is the plain KL), ``grpo.beta`` must be 0 (the
reference slot holds the teacher), and the logged ``kl`` is the KL to the teacher.

Served teacher: ``kdrl.teacher`` may be a teacher config (``{backend: openai, model, options}``,
:mod:`.served_teacher`). The reference slot then holds a stand-in, and the reference log-probs
TRL asks for come from ``Backend.score``: each row's prompt and sampled completion up to and
including its stop token, as token ids where the backend scores ids (transformers; openai with
``score_ids``), else as decoded text, and the teacher's logprob of each sampled token. Where the
teacher splits a decoded text differently from the student's ids, the student's own log-prob
stands in (a zero KL term there). The determinism self-test
runs before the student loads.

Vocabularies: :func:`reasondistill.train.preflight.preflight` runs first (tokenizers and configs
only, before any weights load) and refuses teachers with another vocabulary. Padded output rows
are handled by truncating the teacher's head to the shared size; if the student has more rows
than the teacher, the student is kept from sampling ids the teacher has no logit for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import models
from ..backends.base import ScoreItem
from ..config import PromptConfig, TrainConfig, VerifyConfig
from ..errors import ConfigError
from ..records import Problem
from ..prompts import format_answer, student_messages
from . import base, grpo, served_teacher
from .gkd_config import TEACHER_DTYPES
from .grpo import GRPOObjectiveConfig

log = logging.getLogger(__name__)


@dataclass
class KDRLConfig:
    """GRPO plus a reverse-KL pull towards a frozen teacher that shares the student's vocabulary."""

    teacher: str | dict[str, Any] = ""  # packaged name, .gguf, model folder or hub id, or a teacher config
    #   ({backend: openai, model, options: {base_url}}) scoring through the backend; required when kl_weight > 0
    kl_weight: float = 0.1  # weight of KL(student || teacher) per token; 0: plain GRPO, no teacher loaded
    teacher_dtype: str = "auto"  # auto (bf16 where native, see reasondistill.device) | bfloat16 | float32 | float16
    grpo: GRPOObjectiveConfig = field(default_factory=GRPOObjectiveConfig)
    score_tolerance: float = 1e-3  # teacher config only: largest top-1 logprob difference its self-test allows

    def __post_init__(self) -> None:
        if isinstance(self.grpo, dict):
            self.grpo = GRPOObjectiveConfig(**self.grpo)
        if self.kl_weight < 0:
            raise ConfigError("kdrl.kl_weight must be >= 0")
        if self.grpo.beta != 0:
            raise ConfigError("kdrl.grpo.beta must be 0: the KL slot of GRPO holds the teacher (kdrl.kl_weight); "
                              "a KL to the initial student cannot be added as well")
        if served_teacher.is_served(self.teacher):
            served_teacher.teacher_config(self.teacher, "kdrl.teacher")
        self.score_tolerance = served_teacher.check_tolerance("kdrl", self.score_tolerance)
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise ConfigError(f"kdrl.teacher_dtype = {self.teacher_dtype!r} is not one of: {', '.join(TEACHER_DTYPES)}")


def fit_output_rows(model, rows: int) -> None:
    """Keep the first ``rows`` rows of ``model``'s output head (drops padded rows; no copy)."""
    import torch

    head = model.get_output_embeddings()
    have = head.weight.shape[0]
    if have == rows:
        return
    if have < rows:
        raise ConfigError(f"cannot widen an output head from {have} to {rows} rows")
    new = torch.nn.Linear(head.weight.shape[1], rows, bias=head.bias is not None, device="meta")
    new.weight = torch.nn.Parameter(head.weight.detach()[:rows], requires_grad=False)
    if head.bias is not None:
        new.bias = torch.nn.Parameter(head.bias.detach()[:rows], requires_grad=False)
    model.set_output_embeddings(new)


def _trainer_cls():
    from trl import GRPOTrainer

    class KDRLTrainer(GRPOTrainer):
        """GRPOTrainer whose reference model is a frozen teacher and whose ``beta`` is ``kl_weight``."""

        def __init__(self, *args, teacher, kl_weight: float, shared_vocab: int | None = None,
                     teacher_backend=None, served_stop_ids=(), **kwargs):
            super().__init__(*args, **kwargs)
            if self.beta != 0.0:
                raise ConfigError("KDRLTrainer needs args.beta = 0 (the teacher takes the reference slot)")
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                raise ConfigError("KD+RL runs single-process (no DeepSpeed/FSDP) for now")
            self.teacher_backend = teacher_backend
            self.served_stop_ids = list(served_stop_ids)  # a sampled completion ends at (and includes) one
            self.served_counts = {"teacher_covered_tokens": 0, "teacher_uncovered_tokens": 0}
            if teacher_backend is not None:  # TRL asks the reference slot for log-probs: see below
                self.ref_model = ServedReference()
                self.beta = kl_weight
                return
            from trl.trainer.utils import add_fused_lm_head, disable_dropout_in_model

            teacher.eval().requires_grad_(False)
            if shared_vocab is not None:
                fit_output_rows(teacher, shared_vocab)
            if self.args.disable_dropout:
                disable_dropout_in_model(teacher)
            add_fused_lm_head(teacher, temperature=self.temperature,
                              cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
            self.ref_model = self.accelerator.prepare_model(teacher, evaluation_mode=True)
            self.beta = kl_weight

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args,
                                               **kwargs):
            if isinstance(model, ServedReference):
                return self.served_logps(input_ids, attention_mask, logits_to_keep, *args, **kwargs), None, None
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                               *args, **kwargs)

        def served_logps(self, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
            """``[B, logits_to_keep]``: the served teacher's logprob of each sampled completion token."""
            import torch

            tok = self.processing_class
            prompts, completions = input_ids[:, :-logits_to_keep], input_ids[:, -logits_to_keep:]
            prompt_mask = attention_mask[:, :-logits_to_keep].bool()
            stops = set(self.served_stop_ids)
            items, kept = [], []
            for p, m, c in zip(prompts, prompt_mask, completions.tolist()):
                end = next((j + 1 for j, t in enumerate(c) if t in stops), len(c))  # the stop token is scored
                kept.append(c[:end])
                items.append(ScoreItem(tok.decode(p[m].tolist()), tok.decode(c[:end]), prompt_ids=tuple(p[m].tolist()),
                                       completion_ids=tuple(c[:end])))
            results = self.teacher_backend.score(items, 1)
            out = torch.zeros(completions.shape, dtype=torch.float32, device=input_ids.device)
            uncovered = torch.zeros(completions.shape, dtype=torch.bool, device=input_ids.device)
            for b, (comp, result) in enumerate(zip(kept, results)):
                n = served_teacher.aligned(result, comp)
                out[b, :n] = torch.tensor([e["logprob"] for e in result.logprobs[:n]], dtype=torch.float32)
                uncovered[b, n:len(comp)] = True
                self.served_counts["teacher_covered_tokens"] += n
                self.served_counts["teacher_uncovered_tokens"] += len(comp) - n
            if uncovered.any():  # the student's own log-prob: no KL where the teacher has no score
                with torch.no_grad():
                    own, _, _ = super()._get_per_token_logps_and_entropies(
                        self.model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
                out = torch.where(uncovered, own.float(), out)
            return out

    return KDRLTrainer


class ServedReference:
    """Stands in TRL's reference-model slot for a served teacher (its log-probs come from ``score``)."""


def _preflight_example(problems: list[Problem], prompt_cfg: PromptConfig) -> dict:
    p = problems[0]
    return {"prompt": student_messages(p, prompt_cfg),
            "completion": [{"role": "assistant", "content": format_answer(p.answer)}]}


def check(train_cfg: TrainConfig, kdrl_cfg: KDRLConfig) -> None:
    """Raise :class:`ConfigError` for settings that cannot work; touches no file and no model."""
    if kdrl_cfg.kl_weight > 0 and not kdrl_cfg.teacher:
        raise ConfigError("kdrl.teacher is required when kdrl.kl_weight > 0")
    grpo.check_batch(train_cfg, kdrl_cfg.grpo)


def train(train_cfg: TrainConfig, kdrl_cfg: KDRLConfig, problems: list[Problem], out_dir: Path, *,
          verify_cfg: VerifyConfig | None = None, prompt_cfg: PromptConfig | None = None,
          reward_funcs: list | None = None, args_overrides: dict | None = None):
    """Train in memory, as :func:`.grpo.train` (same return value), with the teacher installed.

    The vocabulary preflight reads only tokenizers and configs, so a teacher that cannot be
    distilled at the token level is refused before any weights load.
    """
    check(train_cfg, kdrl_cfg)
    prompt_cfg = prompt_cfg or PromptConfig()
    if kdrl_cfg.kl_weight == 0:  # plain GRPO
        return grpo.train(train_cfg, kdrl_cfg.grpo, problems, out_dir, verify_cfg=verify_cfg, prompt_cfg=prompt_cfg,
                          reward_funcs=reward_funcs, args_overrides=args_overrides)
    if served_teacher.is_served(kdrl_cfg.teacher):
        return train_served(train_cfg, kdrl_cfg, problems, out_dir, verify_cfg=verify_cfg, prompt_cfg=prompt_cfg,
                            reward_funcs=reward_funcs, args_overrides=args_overrides)
    # configs, not models: the row counts are known before any weights load
    _, t_ref, _, report = base.teacher_preflight(train_cfg, kdrl_cfg.teacher, section="kdrl.teacher",
                                                 example=_preflight_example(problems, prompt_cfg))
    overrides: dict = {"beta": 0.0, "use_bias_correction_kl": True, "importance_sampling_level": "token"}
    if report.student_rows and report.shared_vocab and report.student_rows > report.shared_vocab:
        # the teacher has no logit for these ids: never sample them
        overrides["generation_kwargs"] = {"suppress_tokens": list(range(report.shared_vocab, report.student_rows))}
    overrides.update(args_overrides or {})
    teacher = models.load_model(t_ref.path, dtype=kdrl_cfg.teacher_dtype, device=models.pick_device(train_cfg.device),
                                trust_remote_code=train_cfg.trust_remote_code)
    model, tok, result, history, info = grpo.train(
        train_cfg, kdrl_cfg.grpo, problems, out_dir, verify_cfg=verify_cfg, prompt_cfg=prompt_cfg,
        reward_funcs=reward_funcs, trainer_cls=_trainer_cls(),
        trainer_kwargs={"teacher": teacher, "kl_weight": kdrl_cfg.kl_weight, "shared_vocab": report.shared_vocab},
        args_overrides=overrides, preflight_report=report)
    info.update(teacher=t_ref.identity, kl_weight=kdrl_cfg.kl_weight, **base.first_last(history, "kl"))
    return model, tok, result, history, info


def train_served(train_cfg: TrainConfig, kdrl_cfg: KDRLConfig, problems: list[Problem], out_dir: Path, *,
                 verify_cfg: VerifyConfig | None, prompt_cfg: PromptConfig, reward_funcs: list | None,
                 args_overrides: dict | None):
    """:func:`train` with a teacher config: the self-test on the problems' gold answers, then GRPO
    with the served teacher's log-probs in the reference slot."""
    from .preflight import preflight, stop_token_ids

    _, tok = base.student_tokenizer(train_cfg)
    example = _preflight_example(problems, prompt_cfg)
    report = base.log_report(preflight(tok, example=example))
    items = [ScoreItem(tuple(student_messages(p, prompt_cfg)), format_answer(p.answer))
             for p in problems[:4]]
    backend = served_teacher.open_teacher(kdrl_cfg.teacher, "kdrl.teacher", tok)
    try:
        selftest = served_teacher.check_determinism(backend, items, kdrl_cfg.score_tolerance)
        overrides = {"beta": 0.0, "use_bias_correction_kl": True, "importance_sampling_level": "token",
                     **(args_overrides or {})}
        model, tok, result, history, info = grpo.train(
            train_cfg, kdrl_cfg.grpo, problems, out_dir, verify_cfg=verify_cfg, prompt_cfg=prompt_cfg,
            reward_funcs=reward_funcs, trainer_cls=_trainer_cls(),
            trainer_kwargs={"teacher": None, "kl_weight": kdrl_cfg.kl_weight, "teacher_backend": backend,
                            "served_stop_ids": stop_token_ids(tok)},
            args_overrides=overrides, preflight_report=report)
        info.update(teacher=backend.identity, teacher_selftest=selftest, kl_weight=kdrl_cfg.kl_weight,
                    **base.first_last(history, "kl"))
    finally:
        backend.close()
    return model, tok, result, history, info


def run(train_cfg: TrainConfig, kdrl_cfg: KDRLConfig, problems_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """KD+RL-train ``train_cfg.student`` on the problems in ``problems_path`` and save ``out_dir/model``.

    Config arithmetic and the vocabulary preflight (tokenizers and configs only) run before any
    weights are loaded. A finished run with the same config and inputs is skipped.
    """
    check(train_cfg, kdrl_cfg)
    return grpo.run_rl("kdrl", train, train_cfg, kdrl_cfg, problems_path, out_dir, context)
