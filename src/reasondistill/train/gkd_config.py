"""Options of on-policy distillation (GKD, ``train/gkd.py``); the shared student options (model,
LoRA, steps, batch, learning rate, ``max_length`` ...) stay in :class:`~reasondistill.config.TrainConfig`.

Light module: no torch import, so a bad option fails before anything heavy loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .losses import check_options, loss_values

TEACHER_DTYPES = ("auto", "bfloat16", "float32", "float16")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"gkd.{name} must be a number, got {value!r}")
    return float(value)


@dataclass
class GKDObjectiveConfig:
    """Generalised KD: a share ``lmbda`` of the sequences is sampled from the student as it trains
    and scored by a live teacher; the rest are the curated (cached) teacher completions. Both
    are trained with a loss of the table (``train/losses``, as offline KD), by default the
    generalised JSD between the two models' token distributions."""

    teacher: str | dict[str, Any] = ""  # required: packaged name, .gguf, model folder or hub id loaded here, or a
    #   teacher config ({backend: openai, model, options: {base_url}}) scoring through the backend; shares the
    #   student's vocabulary
    lmbda: float = 0.5  # chance a sequence is replaced by a student sample: 0 = cached traces only, 1 = on-policy
    loss: str = "jsd"  # a name in train/losses LOSSES: jsd, forward_kl, reverse_kl, skew_*_kl, tv
    beta: float = 0.5  # jsd's option (losses/jsd.py JSDOptions): 0 = forward KL, 1 = reverse KL, 0.5 = symmetric JSD
    alpha: float = 0.1  # the skew_* losses' option (losses/skew_kl.py SkewOptions), in [0, 1)
    temperature: float = 1.0  # student sampling temperature, and both distributions in the loss are softmax(logits / T)
    max_new_tokens: int = 128  # tokens sampled per on-policy sequence (also capped by train.max_length)
    teacher_dtype: str = "auto"  # auto (bf16 where native, see reasondistill.device) | bfloat16 | float32 | float16
    teacher_top_k: int = 20  # teacher config only: its top-k logprobs per token (the rest is one tail bucket)
    score_tolerance: float = 1e-3  # teacher config only: largest top-1 logprob difference its self-test allows
    loss_options: dict[str, Any] = field(default_factory=dict)  # any other loss's own options, by name

    def __post_init__(self) -> None:
        if isinstance(self.teacher, dict):
            from .served_teacher import teacher_config
            teacher_config(self.teacher, "gkd.teacher")
        elif not isinstance(self.teacher, str) or not self.teacher.strip():
            raise ConfigError("gkd.teacher is required: the model that scores every sequence (packaged name, "
                              ".gguf, model folder or hub id) and shares the student's vocabulary")
        lmbda = _number("lmbda", self.lmbda)
        if not 0.0 <= lmbda <= 1.0:
            raise ConfigError(f"gkd.lmbda must be in [0, 1] (the share of sequences sampled from the student), "
                              f"got {self.lmbda}")
        check_options("gkd", self.loss, self.loss_values())
        temperature = _number("temperature", self.temperature)
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ConfigError(f"gkd.temperature must be a finite number > 0, got {self.temperature}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or self.max_new_tokens < 1:
            raise ConfigError(f"gkd.max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.teacher_dtype not in TEACHER_DTYPES:
            raise ConfigError(f"gkd.teacher_dtype = {self.teacher_dtype!r} is not one of: "
                              f"{', '.join(TEACHER_DTYPES)}")
        if isinstance(self.teacher_top_k, bool) or not isinstance(self.teacher_top_k, int) or self.teacher_top_k < 1:
            raise ConfigError(f"gkd.teacher_top_k must be an integer >= 1, got {self.teacher_top_k!r}")
        from .served_teacher import check_tolerance
        self.score_tolerance = check_tolerance("gkd", self.score_tolerance)
        self.lmbda, self.beta, self.alpha, self.temperature = lmbda, float(self.beta), float(self.alpha), temperature

    def loss_values(self) -> dict[str, Any]:
        """Every loss option set here, by name: the built-in losses' plain keys and ``loss_options``."""
        return loss_values("gkd", {"beta": self.beta, "alpha": self.alpha}, self.loss_options)
