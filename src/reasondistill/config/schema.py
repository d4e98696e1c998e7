"""The recipe schema: one dataclass per pipeline section, nested under :class:`Recipe`.

YAML recipes mirror this nesting 1:1 (``load.py`` reads them). A component with options of its
own declares them beside its code: a backend's ``Options``, an objective's config, a curation
policy's or generation mode's options class (named by :func:`section`). This module reaches them
only through import strings (the name tables, ``registry.load``), so it imports no stage, and
constructing a section checks its options against the tables: a recipe is checked in one step.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import io
from ..errors import ConfigError
from ..records import Problem
from ..registry import check, load

SECTION = "reasondistill.section"  # field metadata key: who declares a sub-section's options class


def section(declared_by: str) -> Any:
    """A recipe sub-section whose options dataclass lives beside the code that reads it.

    ``declared_by`` is that class as ``module:Class``, or a name table ``module:TABLE`` whose rows
    name their ``section`` and its ``options`` class (``curate.POLICIES``). None, the default,
    becomes the class's defaults (:func:`fill_sections`)."""
    return field(default=None, metadata={SECTION: declared_by})


def section_class(cls: type, name: str) -> type | None:
    """The options class of sub-section ``name`` of schema class ``cls`` (None: not a section)."""
    declared = next((f.metadata.get(SECTION) for f in dataclasses.fields(cls) if f.name == name), None)
    if declared is None:
        return None
    found = load(declared)
    if isinstance(found, type):
        return found
    targets = {row.options for row in found.values() if getattr(row, "section", None) == name}
    if len(targets) != 1:
        raise TypeError(f"{declared} must name one options class for section '{name}', got {sorted(targets)}")
    return load(targets.pop())


def field_types(cls: type) -> dict[str, Any]:
    """``cls``'s field annotations, a declared sub-section's being its options class."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if SECTION in f.metadata:
            hints[f.name] = section_class(cls, f.name)
    return hints


def fill_sections(obj: Any) -> None:
    """Give every declared sub-section of ``obj`` left at None its options class's defaults; a
    section given as anything but an instance of its options class is a programming error."""
    for f in dataclasses.fields(obj):
        if SECTION not in f.metadata:
            continue
        options, value = section_class(type(obj), f.name), getattr(obj, f.name)
        if value is None:
            setattr(obj, f.name, options())
        elif not isinstance(value, options):
            raise TypeError(f"{type(obj).__name__}.{f.name} must be a {options.__name__}, got {type(value).__name__}")


def declared(target: str, *args: Any) -> Any:
    """Call a name table's checking function (``module:function``) on ``args``: how a section's
    names and options are checked against the tables above this layer."""
    return load(target)(*args)


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
    seed: int = 0  # different seeds draw disjoint reasoning-gym items (0..4293); files: the shuffle
    on_error: str = "raise"  # raise | skip (bad rows are counted in the manifest)

    def __post_init__(self) -> None:
        check_choice("problems.answer_format", self.answer_format, ("auto", "gsm8k", "boxed", "raw"))
        check_choice("problems.on_error", self.on_error, ("raise", "skip"))
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
class BackendConfig:
    """A model on a backend (an LLM engine or a program solver): the recipe's ``teacher`` section,
    and also a student evaluated on ``eval.student_backend``, a probe or a live scoring teacher.
    Named for what it builds, since the same contract serves every role."""

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

    def backend_config(self) -> BackendConfig:
        """The fields that build the backend (a named teacher's own fields dropped), so two named
        teachers on the same model share one loaded backend."""
        return BackendConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(BackendConfig)})


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


TEACHER_NAME = re.compile(r"[\w.-]+")


@dataclass
class NamedTeacherConfig(BackendConfig):
    """One entry of a ``teacher:`` list: a teacher plus its name (written into its traces, trace ids
    and sample-cache identity), its own sample count and the problems routed to it."""

    name: str = ""  # required, unique; letters, digits, - _ . only (it is part of trace ids)
    samples: int | None = None  # None: generate.samples
    route: RouteConfig = field(default_factory=RouteConfig)

    def check(self, index: int) -> None:
        """Errors name the entry as ``teacher.<name>`` (the override key), or ``teacher[i]`` without a name."""
        if not TEACHER_NAME.fullmatch(self.name or ""):
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
        check_choice("generate.prompt.style", self.style, ("cot", "pot"))
        if self.style == "pot" and self.few_shot:
            raise ConfigError("generate.prompt.few_shot: the worked examples are chain-of-thought rationales, "
                              "not programs; set few_shot=0 with style pot")


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
    sandbox: Any = section("reasondistill.sandbox:SandboxConfig")  # style pot only
    # ssb: a problem the student (generate.probe) gets wrong is asked with its gold answer and the student's
    # most common wrong answer as a hint (prompts/ssb.txt); the student still trains on the question alone
    hints: str = "none"  # none | ssb
    tailored: bool = False  # failed problems go back to the teacher with the student's wrong answer
    tailored_samples: int = 1  # teacher rationales per failed problem
    probe: Any = section("reasondistill.evaluate.probe:ProbeConfig")  # hints=ssb and tailored only
    modes: list[str] = field(default_factory=list)  # more generation modes (rows of reasondistill.generate.MODES)
    executor: str = "local"  # local (this process) | ray (backend replicas on a Ray cluster; same cache, same traces)
    ray: Any = section("reasondistill.backends.ray_pool:RayConfig")  # executor ray only

    def __post_init__(self) -> None:
        fill_sections(self)
        check_choice("generate.hints", self.hints, ("none", "ssb"))
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
        check_choice("generate.executor", self.executor, ("local", "ray"))

    @property
    def probes(self) -> bool:
        """Whether generation needs the student's answers on the training problems first."""
        return self.hints == "ssb" or self.tailored


@dataclass
class VerifyConfig:
    """Answer extraction and checking."""

    verifier: str = "auto"  # auto, or a row of reasondistill.grading.VERIFIERS: math | reasoning_gym | exact
    timeout_s: float = 5.0  # wall-clock limit per check
    fallback_last_number: bool = True  # no "Answer:" line: take the last number in the text

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError("verify.timeout_s must be > 0")
        check(load("reasondistill.grading:VERIFIERS"), self.verifier, "verifier (verify.verifier)", extra=("auto",))


POLICIES = "reasondistill.curate:POLICIES"


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
    # the policies' own options: each class beside its policy, named by its POLICIES row
    length: Any = section(POLICIES)  # LengthConfig: over_budget, shortest, longest
    student_aware: Any = section(POLICIES)  # StudentAwareConfig
    self_consistency: Any = section(POLICIES)  # SelfConsistencyConfig
    decontaminate: Any = section(POLICIES)  # DecontaminateConfig
    teachers: Any = section(POLICIES)  # TeachersConfig: best_teacher, teacher_quota, teacher_share
    random: int = 0  # > 0: keep n correct traces per problem drawn at random (the baseline for selections)
    random_seed: int = 0

    def __post_init__(self) -> None:
        fill_sections(self)
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
    with ``objective: {alpha: 0.8}``; both are checked against the table on construction.
    """

    student: str = "smollm2-135m-instruct"
    method: str = "sft"  # a row of reasondistill.train.OBJECTIVES: sft | kd | gkd | multitask | redi | dpo | simpo | grpo | kdrl | negative-advantage
    objective: dict[str, Any] = field(default_factory=dict)
    # sft: train SFT on the curated traces first and start from its checkpoint; none: start from `student`;
    # auto: sft for on-policy objectives (gkd, kdrl, grpo, negative-advantage: their OBJECTIVES row), else none
    warm_start: str = "auto"
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
    # the order the training data is read in; None: seed's. A run that continues another's checkpoint
    # wants its own, or it re-reads the traces its parent saw first (compare sets it for ``init`` entries)
    data_seed: int | None = None
    # > 0: the saved student is the mean of its weights after each optimizer step of this last fraction of
    # the run (tail weight averaging; README: it did not narrow curation's seed spread); 0: the last step's weights
    average_last: float = 0.0
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
        check_choice("train.warm_start", self.warm_start, ("auto", "sft", "none"))
        if isinstance(self.packing, bool):  # YAML reads `packing: true` as a bool
            self.packing = str(self.packing).lower()
        check_choice("train.packing", self.packing, ("auto", "true", "false"))
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
        if not 0 <= self.average_last <= 1:
            raise ConfigError(f"train.average_last = {self.average_last!r} must be a fraction of the run's steps "
                              "in [0, 1] (0: save the last step's weights)")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train.batch_size and train.grad_accum must be >= 1")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")
        declared("reasondistill.train:objective_config", self.method, self.objective)


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
    # the backend a student (student_before, student_after, the probe, a self-taught teacher) runs on, as the
    # teacher section's backend + options; its model is the student's checkpoint, dtype/device/batch_size these
    student_backend: str = "transformers"  # a row of reasondistill.backends.BACKENDS
    student_options: dict[str, Any] = field(default_factory=dict)  # that backend's own options

    def __post_init__(self) -> None:
        for m in self.models:
            check_choice("eval.models[]", m, ("teacher", "student_before", "student_after"))
        check_choice("eval.task", self.task, ("rationale", "label"))
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
            check_choice("report.formats[]", f, ("md", "html"))


@dataclass
class CompareConfig:
    """`reasondistill compare`: objectives trained on the same data and step budget.

    Each entry: {name, method, objective: {...}, init: <earlier entry>, train: {TrainConfig fields},
    curate: {CurateConfig fields: the entry re-curates the shared traces into its own folder}}.
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    max_steps: int = -1  # > 0: the same optimizer-step budget for every entry
    max_tokens: int = -1  # > 0: instead, the same student tokens trained for every entry (steps from its data)
    max_seconds: float = -1  # > 0: instead, the same training wall seconds per entry (steps from a timed probe)
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
    self_teach: bool = False  # the student of round r is the teacher of round r+1 (on eval.student_backend)

    def __post_init__(self) -> None:
        check_choice("loop.retrain", self.retrain, ("last", "scratch"))
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
    teacher: BackendConfig | list[NamedTeacherConfig] = field(default_factory=BackendConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if self.multi_teacher:
            self._check_teacher_list()
        for i, teacher in enumerate(self.teachers()):  # each backend's own options, by its table row
            declared("reasondistill.backends:backend_options", teacher,
                     f"teacher[{i}]" if self.multi_teacher else "teacher")

    def _check_teacher_list(self) -> None:
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

    def teachers(self) -> list[BackendConfig]:
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


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not one of: {', '.join(allowed)}")


# options added after runs were made without them: a finished stage from before is the same stage
# while they hold these values (io.later_field)
for _name, _neutral in (("teachers.share", {}), ("carry_optimizer", False), ("init_optimizer", None),
                       ("loss_options", {}), ("data_seed", None),
                       ("average_last", 0.0)):
    io.later_field(_name, _neutral)
