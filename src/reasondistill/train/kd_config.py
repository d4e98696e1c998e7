"""Options of offline token-level distillation (``train/kd.py``); the shared student
options (model, LoRA, steps, batch, learning rate ...) stay in :class:`~reasondistill.config.TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .losses import check_options, loss_values


@dataclass
class KDConfig:
    """Distil from cached teacher top-k logprobs (a logprob store) instead of a live teacher."""

    loss: str = "forward_kl"  # a name in train/losses LOSSES: forward_kl | reverse_kl | jsd | skew_forward_kl | skew_reverse_kl | tv
    temperature: float = 1.0  # softens student and teacher alike; the loss is not rescaled by T^2
    beta: float = 0.5  # jsd's option (losses/jsd.py JSDOptions): 0 = forward KL, 1 = reverse KL (TRL's GKD convention)
    alpha: float = 0.1  # the skew_* losses' option (losses/skew_kl.py SkewOptions), in [0, 1)
    loss_options: dict[str, Any] = field(default_factory=dict)  # any other loss's own options, by name
    ce_weight: float = 0.0  # loss = (1 - ce_weight) * KD + ce_weight * cross-entropy on the completion
    top_k: int = 20  # teacher ids used per token (<= the store's k; the rest joins the tail bucket)
    teacher: dict[str, Any] | None = None  # a teacher config ({backend, model, options}) that scores the curated
    #   traces into a logprob store of this run (cached like samples); None: the generate stage's store
    score_tolerance: float = 1e-3  # teacher only: largest top-1 logprob difference its determinism self-test allows

    def __post_init__(self) -> None:
        check_options("kd", self.loss, self.loss_values())
        if not self.temperature > 0:
            raise ConfigError(f"kd.temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.ce_weight <= 1.0:
            raise ConfigError(f"kd.ce_weight must be in [0, 1], got {self.ce_weight}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ConfigError(f"kd.top_k must be an integer >= 1, got {self.top_k!r}")
        from .served_teacher import check_tolerance, teacher_config

        if self.teacher is not None:
            if not isinstance(self.teacher, dict):
                raise ConfigError(f"kd.teacher must be a teacher config ({{backend, model, options}}), got "
                                  f"{self.teacher!r}")
            teacher_config(self.teacher, "kd.teacher")
        self.score_tolerance = check_tolerance("kd", self.score_tolerance)

    def loss_values(self) -> dict[str, Any]:
        """Every loss option set here, by name: the built-in losses' plain keys and ``loss_options``."""
        return loss_values("kd", {"beta": self.beta, "alpha": self.alpha}, self.loss_options)
