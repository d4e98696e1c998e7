"""The no-teacher control of on-policy distillation: a fixed negative advantage on the student's
own samples.

On-policy distillation (Thinking Machines' write-up; GKD with ``lmbda: 1``) samples completions
from the student on the training prompts and trains each sampled token with the advantage
``log p_teacher - log p_student``, the negative per-token reverse KL. That advantage is negative
on average (its mean over the student's samples is minus the KL), so part of what on-policy
distillation does may come from the sampling and the sign alone. This objective keeps everything
but the teacher: the same sampling on the same prompts (GKD's, every sequence on-policy, at
``temperature`` and up to ``max_new_tokens``), and a fixed advantage ``-c`` on every sampled
token, trained with the policy-gradient loss ``-advantage * log p``:

    loss = c * mean over sampled tokens of log p_student(token)

so a step lowers the probability of what the student just sampled. Over whole sampled sequences its
expected gradient is zero (``E_y[grad log p(y)] = 0``), so whatever it does to the student comes
from finite samples, the token mean's weighting of sequence lengths and the optimizer: the part of
on-policy training that needs no teacher. No teacher is loaded or asked, so a gain of on-policy
distillation over this control is what the teacher's signal adds (arXiv 2608.31046 reports that
this control matches the teacher's signal in some settings; we could not read that paper, so the
form here is the one described above). Nothing else differs: ``reasondistill compare
reproduce-on-policy`` sets ``sft+gkd`` against ``sft+no-teacher`` from the same SFT checkpoint at
the same steps.

Data, sampling, batching, resuming and the manifest are GKD's (:mod:`.gkd`): the curated traces
give the prompts, their completions are never trained on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError
from ..records import TrainExample


@dataclass
class NegativeAdvantageConfig:
    """A fixed advantage ``-c`` on every token the student samples; sampling as GKD's."""

    c: float = 1.0  # the advantage of every sampled token is -c (c > 0: each step pushes the samples down)
    temperature: float = 1.0  # sampling temperature; log p is of softmax(logits / T), the distribution sampled
    max_new_tokens: int = 128  # tokens sampled per sequence (also capped by train.max_length), as gkd's default

    def __post_init__(self) -> None:
        for name in ("c", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                       and value > 0):
                raise ConfigError(f"negative-advantage.{name} must be a finite number > 0, got {value!r}")
            setattr(self, name, float(value))  # max_new_tokens: a count, checked by config.build


def loss(logits: Any, targets: Any, c: float, temperature: float = 1.0) -> Any:
    """``c`` times the mean log-probability of ``targets`` (``[N]``) under ``logits`` (``[N, V]``, one
    row per sampled token) at ``temperature``: minimising it lowers the sampled tokens' probability."""
    import torch

    if not len(targets):
        return logits.sum() * 0.0  # nothing sampled: a zero loss that still has a graph
    logp = torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    return c * logp.mean()


def sampled_targets(input_ids: Any, loss_mask: Any) -> Any:
    """The token each ``loss_mask`` position predicts (position ``p`` predicts ``p + 1``), row-major."""
    nxt = input_ids.new_zeros(input_ids.shape)
    nxt[:, :-1] = input_ids[:, 1:]
    return nxt[loss_mask]


def _trainer_class():
    from . import base, gkd

    class NegativeAdvantageTrainer(base.LoggedParts, gkd._trainer_class()):
        """GKD's trainer with every sequence sampled and, in place of the teacher, a fixed
        advantage ``-c`` on each sampled token."""

        def __init__(self, *args: Any, na_cfg: NegativeAdvantageConfig, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.na_cfg = na_cfg

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sel = inputs["loss_mask"]
            logits = base.completion_logits(model, inputs["input_ids"], inputs["attention_mask"], sel)
            targets = sampled_targets(inputs["input_ids"], sel)
            out = loss(logits, targets, self.na_cfg.c, self.na_cfg.temperature)
            self.record(sampled_logp=out.detach() / self.na_cfg.c)  # the mean log p of the samples, logged
            return (out, logits) if return_outputs else out

    return NegativeAdvantageTrainer


def sampling(cfg: NegativeAdvantageConfig):
    """GKD's options for its sampling: every sequence on-policy (``lmbda`` 1). Its ``teacher`` is
    only a label: the trainer gets no teacher and never computes GKD's loss."""
    from .gkd_config import GKDObjectiveConfig

    return GKDObjectiveConfig(teacher="none (negative-advantage control)", lmbda=1.0,
                              temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)


def train(cfg: TrainConfig, na_cfg: NegativeAdvantageConfig, examples: list[TrainExample], out_dir: Path,
          train_path: str | Path = "<train>"):
    """Train in memory. Returns ``(model, tokenizer, train_output, log_history, info)``."""
    from . import base, gkd
    from .preflight import output_rows, preflight, stop_token_ids

    s_ref, tok = base.student_tokenizer(cfg)
    report = base.log_report(preflight(tok, example=examples[0] if examples else None))
    features, counts = gkd.tokenize(examples, tok, cfg.max_length, train_path)
    model, device, use_bf16 = base.load_student(cfg, s_ref.path)
    rows, stop_ids = output_rows(model), stop_token_ids(tok, model)
    trainer = base.trainer(_trainer_class(), cfg, model, tok, out_dir, device=device, use_bf16=use_bf16,
                           train_dataset=features, data_collator=gkd.Collator(tok.pad_token_id), teacher=None,
                           gkd_cfg=sampling(na_cfg), stop_ids=stop_ids, shared_vocab=rows,
                           max_length=cfg.max_length, seed=cfg.seed, na_cfg=na_cfg)
    model, result, history = base.fit(trainer, cfg, out_dir)
    info = {"advantage": -na_cfg.c, "student_rows": rows, **base.first_last(history, "sampled_logp")}
    return model, tok, result, history, gkd.summary(trainer, examples, s_ref, use_bf16, counts, stop_ids, report,
                                                    info)


def run(train_cfg: TrainConfig, na_cfg: NegativeAdvantageConfig, train_path: str | Path, out_dir: str | Path, *,
        context: Any = None) -> dict:
    """Train ``train_cfg.student`` on its own samples for the prompts of ``train_path`` with a fixed
    negative advantage; save ``out_dir/model``, ``loss.jsonl`` and the manifest (skipped when done)."""
    from . import base

    config = {"train": dataclasses.asdict(train_cfg), "negative_advantage": dataclasses.asdict(na_cfg)}
    return base.cached_run(out_dir, "negative-advantage", config, [train_path],
                           lambda: train(train_cfg, na_cfg, base.load_examples(train_path), Path(out_dir), train_path))
