"""Typed recipe configuration: one dataclass per component, nested under :class:`Recipe`.

Precedence: dataclass defaults < YAML recipe < ``a.b=c`` overrides. Unknown keys are
errors that name the offending key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import io
from .errors import ConfigError
from .records import Problem


@dataclass
class ProblemsConfig:
    """Where problems come from and how they split into train and held-out sets."""

    source: str = "reasoning_gym"  # "reasoning_gym", or a path: .jsonl/.json/.parquet/.csv or an HF datasets folder
    task: str = "chain_sum"  # reasoning-gym task name (source=reasoning_gym)
    task_config: dict[str, Any] = field(default_factory=dict)  # the task's own config knobs
    eval_source: str | None = None  # optional separate file/folder for held-out problems
    fields: dict[str, str] = field(default_factory=lambda: {"prompt": "question", "answer": "answer"})
    answer_format: str = "auto"  # auto | gsm8k ("#### 42") | boxed (\boxed{..}) | raw
    split: str | None = None  # split read from an HF DatasetDict folder source (None: 'train')
    eval_split: str | None = None  # split read from an HF DatasetDict eval_source (None: 'test', else 'validation')
    n_train: int | None = 400  # None: all remaining rows
    n_eval: int = 300
    seed: int = 0
    on_error: str = "raise"  # raise | skip (bad rows are counted in the manifest)

    def __post_init__(self) -> None:
        _choice("problems.answer_format", self.answer_format, ("auto", "gsm8k", "boxed", "raw"))
        _choice("problems.on_error", self.on_error, ("raise", "skip"))
        if self.n_eval < 0 or (self.n_train is not None and self.n_train < 0):
            raise ConfigError("problems.n_train and problems.n_eval must be >= 0")
        # a partial mapping (e.g. the override problems.fields.prompt=q) keeps the other defaults
        self.fields = {"prompt": "question", "answer": "answer", **(self.fields or {})}
        if not all(isinstance(v, str) and v for v in self.fields.values()):
            raise ConfigError("problems.fields values must be non-empty column names")
        if unknown := sorted(set(self.fields) - {"prompt", "answer", "id"}):
            raise ConfigError(f"problems.fields: unknown record field(s) {', '.join(unknown)}; "
                              "map prompt, answer and optionally id")

    def task_name(self) -> str:
        """A short name for the task: the reasoning-gym task, else the source file's stem."""
        return self.task if self.source == "reasoning_gym" else Path(self.source).stem


@dataclass
class TeacherConfig:
    """Which teacher writes the rationales: an LLM backend or a program solver."""

    backend: str = "program"  # a row of reasondistill.backends.BACKENDS: program | transformers | openai | llamacpp | vllm | dummy
    model: str = "smollm2-135m-instruct"  # LLM backends: packaged name, .gguf, folder or hub id (llamacpp: .gguf or packaged)
    dtype: str = "auto"  # auto (bf16 where native, see reasondistill.device) | bfloat16 | float32 | float16
    device: str = "auto"
    batch_size: int = 32
    trust_remote_code: bool = False  # never on unless the user asks
    options: dict[str, Any] = field(default_factory=dict)  # the backend's own options (its Options dataclass)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("teacher.batch_size must be >= 1")

    @property
    def label(self) -> str:
        """How tables name this teacher: its model for an LLM backend, else the backend."""
        return self.model if self.backend in ("transformers", "openai", "llamacpp", "vllm") else self.backend

    def backend_config(self) -> TeacherConfig:
        """The fields that build the backend (a named teacher's own fields dropped), so two named
        teachers on the same model share one loaded backend."""
        return TeacherConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TeacherConfig)})


ROUTE_FIELDS = ("id", "source", "task")  # plus meta.<key>; task is meta.task, as problem loaders set it


@dataclass
class RouteConfig:
    """``teacher[].route``: which problems a named teacher samples. Off (every problem) while
    ``field`` is None; else the problems whose ``field`` (``id``, ``source``, ``task`` or
    ``meta.<key>``) is one of ``values``."""

    values: list[str] = field(default_factory=list)
    field: str | None = None  # noqa: A003 - the recipe key users write

    def check(self, where: str) -> None:
        if self.field is None:
            if self.values:
                raise ConfigError(f"{where}.route.values needs route.field (one of {', '.join(ROUTE_FIELDS)} "
                                  "or meta.<key>)")
            return
        if self.field not in ROUTE_FIELDS and not (self.field.startswith("meta.") and len(self.field) > 5):
            raise ConfigError(f"{where}.route.field = {self.field!r} is not a problem field: use one of "
                              f"{', '.join(ROUTE_FIELDS)} or meta.<key>")
        if not self.values or not all(isinstance(v, str) and v for v in self.values):
            raise ConfigError(f"{where}.route.values must be a non-empty list of strings")

    def admits(self, problem: Problem) -> bool:
        """Whether ``problem`` is routed to this teacher (a problem without the field is not)."""
        if self.field is None:
            return True
        if self.field in ("id", "source"):
            value = getattr(problem, self.field)
        else:
            value = problem.meta.get(self.field.removeprefix("meta."))
        return value is not None and str(value) in self.values


_TEACHER_NAME = re.compile(r"[\w.-]+")


@dataclass
class NamedTeacherConfig(TeacherConfig):
    """One entry of a ``teacher:`` list: a teacher plus its name (written into its traces, trace ids
    and sample-cache identity), its own sample count and the problems routed to it."""

    name: str = ""  # required, unique; letters, digits, - _ . only (it is part of trace ids)
    samples: int | None = None  # None: generate.samples
    route: RouteConfig = field(default_factory=RouteConfig)

    def check(self, index: int) -> None:
        """Errors name the entry as ``teacher.<name>`` (the override key), or ``teacher[i]`` without a name."""
        if not _TEACHER_NAME.fullmatch(self.name or ""):
            raise ConfigError(f"teacher[{index}].name is required in a teacher list: letters, digits, '-', '_' "
                              f"or '.', got {self.name!r}")
        where = f"teacher.{self.name}"
        if self.samples is not None and self.samples < 1:
            raise ConfigError(f"{where}.samples must be >= 1")
        self.route.check(where)


@dataclass
class PromptConfig:
    """Prompt files. Templates use {question} and, for rationalization, {hint}."""

    style: str = "cot"  # cot | pot (program of thought: the teacher writes a Python program, run in a sandbox)
    template: str | None = None  # path to a template file; None: the built-in one for `style`
    rationalize_template: str | None = None  # None: built-in STaR hint template for `style`
    ssb_template: str | None = None  # generate.hints=ssb: {question}, {hint} (gold), {wrong}; None: prompts/ssb.txt
    tailored_template: str | None = None  # generate.tailored: {question}, {student}; None: prompts/tailored.txt
    few_shot: int = 0  # worked examples (from the training problems' gold answers) prepended to LLM prompts

    def __post_init__(self) -> None:
        _choice("generate.prompt.style", self.style, ("cot", "pot"))
        if self.style == "pot" and self.few_shot:
            raise ConfigError("generate.prompt.few_shot: the worked examples are chain-of-thought rationales, "
                              "not programs; set few_shot=0 with style pot")


@dataclass
class SandboxConfig:
    """``generate.sandbox``: limits for running program-of-thought programs (``generate.prompt.style:
    pot``); see ``reasondistill.sandbox``."""

    timeout_s: float = 10.0  # wall clock per program
    cpu_s: int = 5  # CPU seconds per program
    memory_mb: int = 512  # address-space limit
    output_bytes: int = 65536  # largest file (stdout included) a program may write
    # auto: a network namespace (unshare -n) where possible, plus the audit hook | hook: the audit hook only
    network: str = "auto"
    workers: int = 4  # programs run at once

    def __post_init__(self) -> None:
        _choice("generate.sandbox.network", self.network, ("auto", "hook"))
        if self.timeout_s <= 0 or self.cpu_s < 1 or self.memory_mb < 64 or self.output_bytes < 1 or self.workers < 1:
            raise ConfigError("generate.sandbox: timeout_s > 0, cpu_s >= 1, memory_mb >= 64, output_bytes >= 1 "
                              "and workers >= 1")


@dataclass
class ProbeConfig:
    """``generate.probe``: the student answering the training problems before generation (its greedy
    answer plus ``samples`` sampled ones, through the evaluation runner and the sample cache), for SSB
    hints (``generate.hints: ssb``) and tailored learning (``generate.tailored``)."""

    model: str = "student"  # student (train.student, through transformers) | teacher (the recipe's teacher itself)
    samples: int = 4  # sampled answers per problem, besides the greedy one
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    fail_below: float = 0.5  # tailored: a problem the student passes less often than this counts as failed

    def __post_init__(self) -> None:
        _choice("generate.probe.model", self.model, ("student", "teacher"))
        if self.samples < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("generate.probe: samples >= 0, max_new_tokens >= 1 and batch_size >= 1")
        if not 0 < self.fail_below <= 1:
            raise ConfigError("generate.probe.fail_below must be in (0, 1]")


@dataclass
class RayConfig:
    """``generate.ray``: where and how wide ``generate.executor: ray`` fans out (see
    ``reasondistill.backends.ray_pool``). The driver still writes the cache and the traces."""

    address: str | None = None  # None: join the ray.init() already made in this process, else start a local one; "auto" | ray://host:port
    num_workers: int = 2  # backend replicas (Ray actors), each built from `teacher`
    num_cpus: float = 1.0  # CPUs reserved per replica
    num_gpus: float = 0.0  # GPUs reserved per replica (an in-process engine on a GPU node)
    max_retries: int = 3  # a replica that dies is restarted and its unfinished batches resubmitted this often
    connect_timeout_s: float = 30.0  # how long to wait for the cluster at `address` to answer

    def __post_init__(self) -> None:
        if self.address is not None and self.address not in ("auto", "local"):
            check_address("generate.ray.address", self.address)
        if self.connect_timeout_s <= 0:
            raise ConfigError("generate.ray.connect_timeout_s must be > 0")
        if self.num_workers < 1:
            raise ConfigError("generate.ray.num_workers must be >= 1")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ConfigError("generate.ray.num_cpus and num_gpus must be >= 0")
        if self.max_retries < 0:
            raise ConfigError("generate.ray.max_retries must be >= 0")


@dataclass
class GenerateConfig:
    """Sampling N rationales per problem, plus STaR rationalization for failures."""

    samples: int = 4
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    rationalize: bool = True  # re-ask failed problems with the gold answer as a hint
    rationalize_samples: int = 1
    top_logprobs: int = 0  # > 0: keep the teacher's top-k logprobs per token (for KD); 20 is typical
    cache_dir: str | None = None  # None: $REASONDISTILL_CACHE/samples (~/.cache/reasondistill)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)  # style pot only
    # ssb: a problem the student (generate.probe) gets wrong is asked with its gold answer and the student's
    # most common wrong answer as a hint (prompts/ssb.txt); the student still trains on the question alone
    hints: str = "none"  # none | ssb
    tailored: bool = False  # failed problems go back to the teacher with the student's wrong answer
    tailored_samples: int = 1  # teacher rationales per failed problem
    probe: ProbeConfig = field(default_factory=ProbeConfig)  # hints=ssb and tailored only
    executor: str = "local"  # local (this process) | ray (backend replicas on a Ray cluster; same cache, same traces)
    ray: RayConfig = field(default_factory=RayConfig)  # executor ray only

    def __post_init__(self) -> None:
        _choice("generate.hints", self.hints, ("none", "ssb"))
        if self.tailored_samples < 1:
            raise ConfigError("generate.tailored_samples must be >= 1")
        if self.probes and self.prompt.style != "cot":
            raise ConfigError("generate.hints=ssb and generate.tailored write chain-of-thought rationales; "
                              "set generate.prompt.style=cot")
        if self.samples < 1:
            raise ConfigError("generate.samples must be >= 1")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError("generate.temperature must be in [0, 5]")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("generate.top_p must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ConfigError("generate.max_new_tokens must be >= 1")
        if self.top_logprobs < 0:
            raise ConfigError("generate.top_logprobs must be >= 0")
        _choice("generate.executor", self.executor, ("local", "ray"))

    @property
    def probes(self) -> bool:
        """Whether generation needs the student's answers on the training problems first."""
        return self.hints == "ssb" or self.tailored


@dataclass
class VerifyConfig:
    """Answer extraction and checking."""

    verifier: str = "auto"  # auto, or a row of reasondistill.verifiers.VERIFIERS: math | reasoning_gym | exact
    timeout_s: float = 5.0  # wall-clock limit per check
    fallback_last_number: bool = True  # no "Answer:" line: take the last number in the text

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError("verify.timeout_s must be > 0")


@dataclass
class LengthConfig:
    """``curate.length``: length-based selection. Lengths are in ``unit``: ``tokens`` (the teacher's
    ``usage.completion_tokens`` recorded in the trace; its word count where a backend recorded none)
    or ``chars`` (of the stripped text). Off by default."""

    unit: str = "tokens"  # tokens | chars
    shortest: int = 0  # > 0: keep only the n shortest correct traces of each problem, across teachers
    longest: int = 0  # > 0: keep only the n longest correct traces of each problem (to compare with shortest)
    budget: int | None = None  # drop correct traces longer than this (reason over_budget)
    # per-difficulty budgets, [[max_difficulty, budget], ...] in increasing difficulty (1 - pass rate);
    # the first row whose bound is >= a problem's difficulty sets its budget (else `budget` applies)
    budget_by_difficulty: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("curate.length.unit", self.unit, ("tokens", "chars"))
        if self.shortest < 0 or self.longest < 0:
            raise ConfigError("curate.length.shortest and curate.length.longest must be >= 0")
        if self.shortest and self.longest:
            raise ConfigError("curate.length: set shortest or longest, not both")
        if self.budget is not None and self.budget < 1:
            raise ConfigError("curate.length.budget must be >= 1")
        bounds = []
        for row in self.budget_by_difficulty:
            if (not isinstance(row, list) or len(row) != 2 or not all(isinstance(x, (int, float)) for x in row)
                    or not 0 <= row[0] <= 1 or row[1] < 1):
                raise ConfigError("curate.length.budget_by_difficulty rows are [max_difficulty in [0, 1], "
                                  f"budget >= 1], got {row!r}")
            bounds.append(row[0])
        if bounds != sorted(bounds):
            raise ConfigError("curate.length.budget_by_difficulty rows must go from easy to hard (increasing bounds)")

    @property
    def budgeted(self) -> bool:
        return self.budget is not None or bool(self.budget_by_difficulty)


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


@dataclass
class SelfConsistencyConfig:
    """``curate.self_consistency``: for problems without a gold answer (empty ``answer``), the majority
    answer over the unhinted samples is the pseudo-label; traces that agree with it count as correct
    when its vote share (majority votes / samples) is at least ``min_share``. Off while ``min_share``
    is None (such problems' traces are then rejected with reason ``no_gold``)."""

    min_share: float | None = None
    min_votes: int = 2  # fewer votes for the majority answer: no pseudo-label

    def __post_init__(self) -> None:
        if self.min_share is not None and not 0 < self.min_share <= 1:
            raise ConfigError("curate.self_consistency.min_share must be in (0, 1]")
        if self.min_votes < 1:
            raise ConfigError("curate.self_consistency.min_votes must be >= 1")


@dataclass
class DecontaminateConfig:
    """``curate.decontaminate``: drop training problems whose prompt shares word n-grams with a
    held-out problem's (reason ``contaminated``). Off while ``ngram`` is None."""

    ngram: int | None = None  # n of the word n-grams (8-13 is usual; prompts shorter than n are one gram)
    min_overlap: float = 0.5  # share of a training prompt's n-grams found in one held-out prompt
    eval_problems: str | None = None  # held-out problems file; None: the run folder's problems/eval.jsonl

    def __post_init__(self) -> None:
        if self.ngram is not None and self.ngram < 1:
            raise ConfigError("curate.decontaminate.ngram must be >= 1")
        if not 0 < self.min_overlap <= 1:
            raise ConfigError("curate.decontaminate.min_overlap must be in (0, 1]")


@dataclass
class TeachersConfig:
    """``curate.teachers``: choosing among several teachers' traces (traces carry ``teacher``)."""

    best: bool = False  # per problem, keep only the traces of the teacher with the highest pass rate on it
    # at most this many kept traces per problem from each teacher ("*": every teacher not named)
    quota: dict[str, int] = field(default_factory=dict)
    # per problem, the traces of one teacher drawn with these weights ({long: 1, short: 4}: a 1:4 mix)
    share: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for k, v in self.quota.items()):
            raise ConfigError("curate.teachers.quota maps teacher names (or '*') to counts >= 0")
        if self.share and (not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and v >= 0 for k, v in self.share.items()) or not sum(self.share.values()) > 0):
            raise ConfigError("curate.teachers.share maps teacher names to weights >= 0, at least one above 0 "
                              "(e.g. {long: 1, short: 4})")


@dataclass
class CurateConfig:
    """Which verified traces become training data. Every switch below the first five is off by
    default, so the default recipe's curated files are what they were before the switches existed."""

    max_per_problem: int = 2  # cap on kept correct traces per problem
    drop_truncated: bool = True  # drop traces that hit max_new_tokens
    include_hinted: bool = True  # keep STaR rationalizations (trained without the hint)
    dedup: bool = True  # drop identical rationales for the same problem
    require_format: bool = True  # drop correct traces with no "Answer:" line or \boxed{} (passed on a bare number)
    dedup_jaccard: float | None = None  # with dedup: also drop near-duplicates (word n-gram Jaccard >= this)
    dedup_ngram: int = 3  # n of the word n-grams compared by dedup_jaccard
    pass_rate_band: list[float] | None = None  # [lo, hi]: keep problems whose unhinted pass rate is in the band
    # False: lo < p < hi (so [0, 1] drops the all-solved and the none-solved problems); True: lo <= p <= hi
    pass_rate_inclusive: bool = False
    length: LengthConfig = field(default_factory=LengthConfig)
    student_aware: StudentAwareConfig = field(default_factory=StudentAwareConfig)
    self_consistency: SelfConsistencyConfig = field(default_factory=SelfConsistencyConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    teachers: TeachersConfig = field(default_factory=TeachersConfig)
    random: int = 0  # > 0: keep n correct traces per problem drawn at random (the baseline for selections)
    random_seed: int = 0

    def __post_init__(self) -> None:
        if self.random < 0:
            raise ConfigError("curate.random must be >= 0")
        if self.max_per_problem < 1:
            raise ConfigError("curate.max_per_problem must be >= 1")
        if self.dedup_jaccard is not None and not 0 < self.dedup_jaccard <= 1:
            raise ConfigError("curate.dedup_jaccard must be in (0, 1]")
        if self.dedup_ngram < 1:
            raise ConfigError("curate.dedup_ngram must be >= 1")
        band = self.pass_rate_band
        if band is not None:
            if (not isinstance(band, list) or len(band) != 2
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in band)
                    or not 0 <= band[0] <= band[1] <= 1):
                raise ConfigError(f"curate.pass_rate_band must be [lo, hi] with 0 <= lo <= hi <= 1, got {band!r}")
            if not self.pass_rate_inclusive and band[0] == band[1]:
                raise ConfigError("curate.pass_rate_band: an exclusive band [lo, hi] needs lo < hi")


@dataclass
class TrainConfig:
    """Student training: the objective (``method``) and the options every objective shares.

    Objective-specific options go in ``objective`` and are validated by that objective's
    own config dataclass (see ``reasondistill.train.OBJECTIVES``), e.g. ``method: redi``
    with ``objective: {alpha: 0.8}``; names and options are checked against the tables by
    ``pipeline.check_recipe`` before anything loads, so this module imports no stage.
    """

    student: str = "smollm2-135m-instruct"
    method: str = "sft"  # a row of reasondistill.train.OBJECTIVES: sft | kd | gkd | multitask | redi | dpo | simpo | grpo | kdrl
    objective: dict[str, Any] = field(default_factory=dict)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 5e-5
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup_ratio: float = 0.05
    logging_steps: int = 5
    report_to: list[str] = field(default_factory=list)  # trackers for the Trainer's logs, e.g. [tensorboard] (event files in train/runs/); []: none
    gradient_checkpointing: bool = False  # trades compute for memory; off: small students fit anyway
    dtype: str = "auto"  # autocast dtype, weights fp32; auto: bf16 where native, fp16 on older CUDA, else fp32
    device: str = "auto"
    seed: int = 0
    trust_remote_code: bool = False
    # resumable checkpoints (train/trainer/checkpoint-N: weights, optimizer, scheduler, RNG, data position),
    # removed once the run is saved; how often is one of: a fraction of the run's steps, steps, or minutes
    checkpoint_every: float = 0.1  # every this fraction of the run's optimizer steps; 0: no checkpoints
    checkpoint_steps: int = 0  # > 0: every N optimizer steps instead of the fraction
    checkpoint_minutes: float = 0.0  # > 0: after every M minutes of training instead of the fraction
    checkpoint_keep: int = 1  # the newest N checkpoints are kept
    # an optimizer carried from one run to the next (loop.retrain: last sets both)
    carry_optimizer: bool = False  # also save the optimizer's state beside the model (train/optimizer.pt)
    init_optimizer: str | None = None  # an optimizer.pt a carry_optimizer run saved, loaded before the first step
    packing: str = "auto"  # sft, kd, redi, dpo, simpo: pack each batch's examples into fewer rows (no attention across
    #   examples); auto/true: where a probe shows the model's attention keeps them apart (else padded); false: padded
    compile: bool = False  # the same objectives: torch.compile (inductor) the student's decoder layers; off: unmeasured

    def __post_init__(self) -> None:
        if isinstance(self.packing, bool):  # YAML reads `packing: true` as a bool
            self.packing = str(self.packing).lower()
        _choice("train.packing", self.packing, ("auto", "true", "false"))
        if not 0 <= self.checkpoint_every <= 1:
            raise ConfigError(f"train.checkpoint_every = {self.checkpoint_every!r} must be a fraction of the run's "
                              "steps in [0, 1] (0: no checkpoints)")
        if self.checkpoint_steps < 0 or self.checkpoint_minutes < 0:
            raise ConfigError("train.checkpoint_steps and train.checkpoint_minutes must be >= 0")
        if self.checkpoint_steps and self.checkpoint_minutes:
            raise ConfigError("train.checkpoint_steps and train.checkpoint_minutes both set how often to save; "
                              "set one of them")
        if self.checkpoint_keep < 1:
            raise ConfigError("train.checkpoint_keep must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError("train.learning_rate must be > 0")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.batch_size and train.grad_accum must be >= 1")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")


@dataclass
class EvalConfig:
    """Held-out evaluation of teacher and student."""

    models: list[str] = field(default_factory=lambda: ["teacher", "student_before", "student_after"])
    n: int | None = None  # None: every held-out problem
    samples: int = 0  # extra sampled generations per problem (pass@k, maj@k); 0: greedy only
    seeds: int = 0  # besides greedy: N sampled runs at `temperature`, run i seeded `seed + i` (pass@1 as the
    #   mean over seeds with a bootstrap interval; pass@k, maj@k from the same samples); excludes `samples`
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    batch_size: int = 32
    dtype: str = "auto"  # weights dtype; auto: bf16 where native, fp16 on older CUDA, else fp32
    device: str = "auto"
    seed: int = 0
    task: str = "rationale"  # multitask students only: the task prefix they are evaluated under (rationale | label)

    def __post_init__(self) -> None:
        for m in self.models:
            _choice("eval.models[]", m, ("teacher", "student_before", "student_after"))
        _choice("eval.task", self.task, ("rationale", "label"))
        if self.samples < 0 or self.seeds < 0:
            raise ConfigError("eval.samples and eval.seeds must be >= 0")
        if self.samples and self.seeds:
            raise ConfigError("eval.samples and eval.seeds both draw the sampled generations; set one of them "
                              "(seeds: one run per seed over every problem; samples: all under one seed)")


@dataclass
class ReportConfig:
    formats: list[str] = field(default_factory=lambda: ["md", "html"])

    def __post_init__(self) -> None:
        for f in self.formats:
            _choice("report.formats[]", f, ("md", "html"))


@dataclass
class CompareConfig:
    """`reasondistill compare`: objectives trained on the same data and step budget.

    Each entry: {name, method, objective: {...}, init: <earlier entry>, train: {TrainConfig fields},
    curate: {CurateConfig fields: the entry re-curates the shared traces into its own folder}}.
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    max_steps: int = -1  # > 0: the same optimizer-step budget for every entry
    max_tokens: int = -1  # > 0: instead, the same student tokens trained for every entry (steps from its data)
    baseline: bool = True  # also evaluate the untrained train.student: the bar every entry must clear
    train_seeds: int = 1  # train every entry this many times, with train.seed + 0 .. N-1 (data orders)
    reference: str | None = None  # the entry every row's verdict is against; default: the first entry


@dataclass
class LoopConfig:
    """`reasondistill loop`: rounds of evaluate the student -> pick problems -> teacher traces -> curate
    -> retrain. Round r trains on the union of the curated traces of rounds 1..r."""

    rounds: int = 2
    student_samples: int = 4  # K sampled student answers per training problem give its pass rate; 0: no picking
    pick_band: list[float] = field(default_factory=lambda: [0.0, 1.0])  # keep problems with lo <= pass rate < hi
    max_problems: int | None = None  # per round: at most this many picked problems (lowest pass rate first)
    retrain: str = "last"  # last: round r starts from round r-1's checkpoint | scratch: from train.student
    self_teach: bool = False  # the student of round r is the (transformers) teacher of round r+1

    def __post_init__(self) -> None:
        _choice("loop.retrain", self.retrain, ("last", "scratch"))
        if self.rounds < 1 or self.student_samples < 0:
            raise ConfigError("loop.rounds must be >= 1 and loop.student_samples >= 0")
        band = self.pick_band
        if (not isinstance(band, list) or len(band) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in band)
                or not 0 <= band[0] < band[1] <= 1):
            raise ConfigError(f"loop.pick_band must be [lo, hi] with 0 <= lo < hi <= 1, got {band!r}")
        if self.max_problems is not None and self.max_problems < 1:
            raise ConfigError("loop.max_problems must be >= 1")


@dataclass
class Recipe:
    """A whole pipeline run. YAML recipes mirror this nesting 1:1."""

    name: str = "default"
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)
    # one teacher (a mapping), or a list of named teachers (NamedTeacherConfig); see teachers()
    teacher: TeacherConfig | list[NamedTeacherConfig] = field(default_factory=TeacherConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, list):
            return
        if not self.teacher:
            raise ConfigError("teacher: expected a mapping or a non-empty list of named teachers")
        seen: set[str] = set()
        for i, t in enumerate(self.teacher):
            t.check(i)
            if t.name in seen:
                raise ConfigError(f"teacher[{i}].name {t.name!r} is used twice; teacher names must be unique")
            seen.add(t.name)

    @property
    def multi_teacher(self) -> bool:
        return isinstance(self.teacher, list)

    def teachers(self) -> list[TeacherConfig]:
        """The teachers in order: the single ``teacher`` mapping, or each named one."""
        return list(self.teacher) if isinstance(self.teacher, list) else [self.teacher]


def check_url(option: str, url: str, schemes: tuple[str, ...] = ("http", "https")) -> None:
    """A server URL must parse: a known scheme, a host, a port in 1..65535 (checked with the recipe,
    so a typo fails before anything loads instead of deep inside the HTTP client)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of 0..65535 or not a number
    except ValueError as e:
        raise ConfigError(f"{option} = {url!r} is not a valid URL: {e}") from None
    if parts.scheme not in schemes:
        raise ConfigError(f"{option} = {url!r} must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname:
        raise ConfigError(f"{option} = {url!r} has no host name")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{option} = {url!r}: port {port} is not in 1..65535")


def check_address(option: str, address: str) -> None:
    """A ``host:port`` or ``scheme://host:port`` address (a Ray cluster's): a host and a port in 1..65535."""
    check_url(option, address if "://" in address else f"tcp://{address}", ("tcp", "ray", "http", "https"))
    from urllib.parse import urlsplit

    if urlsplit(address if "://" in address else f"tcp://{address}").port is None:
        raise ConfigError(f"{option} = {address!r} has no port (host:port)")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not one of: {', '.join(allowed)}")


# ---------------------------------------------------------------------------
# dict <-> dataclass


# ---------------------------------------------------------------------------
# integers are counts


# The smallest value of an int option whose default does not already say it (see
# :func:`int_floor`), keyed ``Class.field``: each 0 or -1 here has the meaning documented beside
# the field. Every other int option is a count (>= 1), a seed or an "off" switch defaulting to
# 0 (>= 0), or -1 "unset" (-1 or >= 1), so 0 or -2 never silently mean "unset" or "all but two".
INT_FLOORS: dict[str, int] = {
    "ProblemsConfig.n_train": 0,  # 0: no training problems
    "ProblemsConfig.n_eval": 0,  # 0: no held-out problems
    "RayConfig.max_retries": 0,  # 0: a dead replica fails the run
    "LoopConfig.student_samples": 0,  # 0: no picking
    "OpenAIOptions.max_retries": 0,  # further attempts after the first
    "OpenAIOptions.score_max_tokens": 0,  # 0 where the server allows it
    "LlamaCppOptions.n_gpu_layers": -1,  # -1: all layers
}


def int_floor(cls: type, name: str, default: Any) -> tuple[int, int | None]:
    """``(floor, sentinel)`` of int field ``name`` of ``cls``: values must be >= floor or equal the
    sentinel. From :data:`INT_FLOORS`, else from the default: 0 -> a seed or switch (>= 0); a
    negative default is an "unset" sentinel beside counts >= 1; None or >= 1 -> a count (>= 1)."""
    key = f"{cls.__name__}.{name}"
    if key in INT_FLOORS:
        return INT_FLOORS[key], None
    if isinstance(default, int) and not isinstance(default, bool):
        if default == 0:
            return 0, None
        if default < 0:
            return 1, default
    return 1, None


def int_problem(value: Any, floor: int = 1, sentinel: int | None = None) -> str | None:
    """What is wrong with int ``value`` given its floor and sentinel (``None``: nothing)."""
    if not isinstance(value, int) or isinstance(value, bool) or value >= floor or value == sentinel:
        return None
    also = f" or {sentinel} (unset)" if sentinel is not None else " (a count)" if floor == 1 else ""
    return f"must be >= {floor}{also}"


def check_int(name: str, value: Any, floor: int = 1, sentinel: int | None = None) -> None:
    """The one integer check of every recipe key and objective or backend option: a
    :class:`ConfigError` naming ``name`` when ``value`` is below ``floor``."""
    if (problem := int_problem(value, floor, sentinel)) is not None:
        raise ConfigError(f"{name} {problem}, got {value}")


# float options that count something (fractional epochs): never negative
FLOAT_FLOORS: dict[str, float] = {"TrainConfig.epochs": 0.0}


def _check_ints(cls: type, kwargs: dict[str, Any], where: str) -> None:
    """Every int field the recipe sets (defaults are trusted) against :func:`int_floor`, and the
    float counts of :data:`FLOAT_FLOORS`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        floor = FLOAT_FLOORS.get(f"{cls.__name__}.{f.name}")
        if floor is not None and isinstance(kwargs.get(f.name), float) and kwargs[f.name] < floor:
            raise ConfigError(f"{where}.{f.name} must be >= {floor:g}, got {kwargs[f.name]:g}")
        if f.name in kwargs and _strip_optional(hints[f.name]) is int:
            default = f.default if f.default is not dataclasses.MISSING else None
            check_int(f"{where}.{f.name}" if where else f.name, kwargs[f.name], *int_floor(cls, f.name, default))


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def build(cls: type, data: dict[str, Any] | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, with errors naming the dotted key."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'recipe'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown recipe key '{dotted}'{hint}")
        tp = _strip_optional(hints[key])
        if dataclasses.is_dataclass(tp):
            kwargs[key] = build(tp, value, dotted)
        elif (shapes := _union_shapes(tp)) is not None:
            kwargs[key] = _build_either(shapes, value, dotted)
        else:
            kwargs[key] = _coerce(value, tp, dotted)
    _check_ints(cls, kwargs, where)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'recipe'}: {e}") from None


def _union_shapes(tp: Any) -> tuple[type, type] | None:
    """``(A, B)`` for a ``A | list[B]`` annotation of dataclasses (``teacher``), else None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    one = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
    many = [typing.get_args(a)[0] for a in typing.get_args(tp) if typing.get_origin(a) is list]
    return (one[0], many[0]) if len(one) == 1 and len(many) == 1 else None


def _build_either(shapes: tuple[type, type], value: Any, dotted: str) -> Any:
    one, many = shapes
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{dotted}: expected a mapping or a non-empty list of named teachers")
        return [build(many, item, _entry_label(dotted, i, item)) for i, item in enumerate(value)]
    if value is None or isinstance(value, dict):
        return build(one, value, dotted)
    raise ConfigError(f"{dotted}: expected a mapping or a list, got {type(value).__name__}")


def _entry_label(dotted: str, index: int, item: Any) -> str:
    """``teacher.<name>`` for a named list entry (as overrides address it), else ``teacher[i]``."""
    name = item.get("name") if isinstance(item, dict) else None
    return f"{dotted}.{name}" if isinstance(name, str) and _TEACHER_NAME.fullmatch(name) else f"{dotted}[{index}]"


_FLOAT_TEXT = re.compile(r"[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?")


def _coerce(value: Any, tp: Any, dotted: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp) or tp
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value.strip().replace("_", ""))  # "1e-4" (quoted, or from another YAML reader)
    if origin in (int, float, str, bool) and not isinstance(value, origin):
        raise ConfigError(f"recipe key '{dotted}' must be {_KIND[origin]}, got {value!r}")
    if origin in (int, float) and isinstance(value, bool):
        raise ConfigError(f"recipe key '{dotted}' must be {_KIND[origin]}, got {value!r}")
    if origin is list and not isinstance(value, list):
        raise ConfigError(f"recipe key '{dotted}' must be a list, got {value!r}")
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"recipe key '{dotted}' must be a mapping, got {value!r}")
    return value


_KIND = {int: "int", float: "float (a number such as 0.5 or 1e-4)", str: "str", bool: "bool (true or false)"}


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


class _Loader(yaml.SafeLoader):
    """YAML with ``1e-4`` read as a float: PyYAML follows YAML 1.1, where a float needs a dot
    and a signed exponent, so ``learning_rate: 1e-4`` would otherwise be the string '1e-4'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def _field_type(parts: list[str]) -> Any:
    """The annotation of the recipe field at dotted ``parts`` (``None``: not a known field, or an
    objective's own option under ``train.objective``, whose values parse as YAML)."""
    tp: Any = Recipe
    for i, part in enumerate(parts):
        tp = _strip_optional(tp) if i else tp
        if tp is TrainConfig and part == "objective":
            return None  # the objective's own options: their types live with the objective (train/)
        if (shapes := _union_shapes(tp)) is not None:  # teacher.<field> or teacher.<name>.<field>
            one, many = shapes
            tp = typing.get_type_hints(one).get(part, many)  # not a field of one: the name of a list entry
        elif dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                return None
            tp = hints[part]
        elif typing.get_origin(tp) is dict and len(typing.get_args(tp)) == 2:
            tp = typing.get_args(tp)[1]
        else:
            return None
    return tp


def _override_value(raw: str, tp: Any) -> Any:
    """A string field (a path, a model name) takes the text as typed: YAML would turn
    ``set #2.jsonl`` into ``set`` (a comment) and ``run: v2.jsonl`` into a mapping. Quoting
    (``'...'``) and, where the field allows it, ``null`` keep their YAML meaning. Every other
    field parses as YAML (numbers, booleans, lists, mappings)."""
    if _strip_optional(tp) is not str:
        return _yaml(raw) if raw != "" else ""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        try:
            quoted = _yaml(raw)
        except yaml.YAMLError:
            quoted = None
        if isinstance(quoted, str):
            return quoted
    if tp is not str and raw in ("null", "Null", "NULL", "~"):
        return None
    return raw


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` strings to a nested dict. Values parse as YAML scalars/lists/mappings,
    except where the field is a string (see :func:`_override_value`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(part.strip() for part in parts):
            what = "has no key" if not key.strip() else "has an empty part in its key"
            err = ConfigError(f"override '{item}' {what}; write section.key=value, e.g. train.epochs=2")
            err.override = item
            raise err
        try:
            value = _override_value(raw, _field_type(parts))
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': cannot read the value as YAML "
                              f"({getattr(e, 'problem', None) or e}); quote it") from None
        node = data
        for part in parts[:-1]:
            node = _named_item(node, part, item) if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
        if isinstance(node, list):
            raise ConfigError(f"override '{item}': '{'.'.join(parts[:-1])}' is a list of named teachers; "
                              f"address a field of one by name: {'.'.join(parts[:-1])}.<name>.{parts[-1]}=...")
        node[parts[-1]] = value
    return data


def _named_item(items: list[Any], part: str, item: str) -> Any:
    """The entry of a list section (``teacher: [...]``) whose ``name`` is ``part``."""
    for entry in items:
        if isinstance(entry, dict) and entry.get("name") == part:
            return entry
    names = [str(e.get("name")) for e in items if isinstance(e, dict)]
    raise ConfigError(f"override '{item}': no list entry named '{part}' (names: {', '.join(names) or 'none'}); "
                      "a teacher list is addressed by name, e.g. teacher.<name>.samples=8")


BUILTIN_RECIPES = {
    "default": "smollm2-135m/sft/program_teacher.yaml",
    "program-teacher": "smollm2-135m/sft/program_teacher.yaml",
    "llm-teacher": "smollm2-135m/sft/llm_teacher.yaml",
    "compare": "smollm2-135m/compare/objectives.yaml",
    "compare-weak-teacher": "smollm2-135m/compare/objectives_weak_teacher.yaml",
    "curation": "smollm2-135m/compare/curation.yaml",
    "curation-mixed": "smollm2-135m/compare/curation_mixed.yaml",
    "loop": "smollm2-135m/loop/self_train.yaml",
    "reproduce-redi": "smollm2-135m/reproduce/redi.yaml",
    "reproduce-learnability": "smollm2-135m/reproduce/learnability.yaml",
    "reproduce-student-likely": "smollm2-135m/reproduce/student_likely.yaml",
}

# a model reference "run:NAME" is the checkpoint of built-in recipe NAME's run (or of the recipe
# file NAME.yaml), trained first when missing (``pipeline.resolve_references``)
RUN_REF = "run:"


def run_reference(spec: Any) -> str | None:
    """The recipe named by a ``run:NAME`` model reference, else ``None``."""
    return spec[len(RUN_REF):].strip() if isinstance(spec, str) and spec.startswith(RUN_REF) else None


def run_reference_recipe(spec: str, where: str) -> Path:
    """The recipe file a ``run:NAME`` reference names: a built-in recipe or a YAML file; anything
    else is a :class:`ConfigError` naming ``where`` and listing the built-ins."""
    name = run_reference(spec) or ""
    if name in BUILTIN_RECIPES:
        return builtin_recipe_path(name)
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return Path(name)
    raise ConfigError(f"{where} = {spec!r}: '{name}' is neither a built-in recipe ({', '.join(BUILTIN_RECIPES)}) "
                      "nor a recipe .yaml file")


def builtin_recipe_path(name: str) -> Path:
    rel = BUILTIN_RECIPES[name]
    return Path(str(resources.files("reasondistill") / "recipes" / rel))


def load_recipe(source: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe from a YAML path or a built-in name (None: ``default``)."""
    source = "default" if source is None else source
    if str(source) in BUILTIN_RECIPES:
        path = builtin_recipe_path(str(source))
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"recipe '{source}' is neither a file nor a built-in recipe "
                              f"({', '.join(BUILTIN_RECIPES)})")
    from . import io
    from .errors import InputError

    if path.is_dir():
        raise ConfigError(f"recipe '{source}' is a folder; give a recipe YAML file or a built-in name "
                          f"({', '.join(BUILTIN_RECIPES)})")
    try:
        data = _yaml(io.read_text(path)) or {}
    except InputError as e:  # not UTF-8
        raise ConfigError(str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    overrides = list(overrides or [])
    base = copy.deepcopy(data)
    data = apply_overrides(data, overrides)
    try:
        return build(Recipe, data)
    except ConfigError as e:
        raise _attributed(e, path, base, overrides,
                          builtin=str(source) if str(source) in BUILTIN_RECIPES else None) from None


def _attributed(e: ConfigError, path: Path, base: dict[str, Any], overrides: list[str], *,
                builtin: str | None) -> ConfigError:
    """Name what the user typed: the override whose key the error names, else the recipe file
    (a built-in recipe is named by its name, not by a path inside the installed package).
    When the message names several overridden keys, the culprit is the one whose removal
    changes the error."""
    detail = str(e)
    named = [item for item in overrides if (key := item.split("=", 1)[0].strip()) and
             re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", detail)]
    culprit = named[-1] if named else None
    if len(named) > 1:
        for item in reversed(named):
            try:
                build(Recipe, apply_overrides(copy.deepcopy(base), [o for o in overrides if o != item]))
            except ConfigError as other:
                if str(other) == detail:
                    continue
            culprit = item
            break
    if culprit is not None:
        err = ConfigError(f"override '{culprit}': {detail}")
        err.override = culprit
    elif builtin:
        err = ConfigError(f"built-in recipe '{builtin}' with overrides {' '.join(overrides) or '(none)'}: "
                          f"{detail}")
    else:
        err = ConfigError(f"{path}: {detail}")
    err.detail = detail
    return err


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)


# options added after runs were made without them: a finished stage from before is the same stage
# while they hold these values (io.later_field)
for _name, _neutral in (("teachers.share", {}), ("carry_optimizer", False), ("init_optimizer", None)):
    io.later_field(_name, _neutral)
