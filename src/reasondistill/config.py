"""Typed recipe configuration: one dataclass per component, nested under :class:`Recipe`.

Precedence: dataclass defaults < YAML recipe < ``a.b=c`` overrides. Unknown keys are
errors that name the offending key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


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

    backend: str = "program"  # a row of reasondistill.backends.BACKENDS: program | transformers | openai | dummy
    model: str = "smollm2-135m-instruct"  # LLM backends: packaged name, .gguf, folder or hub id
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bfloat16 | float32 | float16
    device: str = "auto"
    batch_size: int = 32
    trust_remote_code: bool = False  # never on unless the user asks
    options: dict[str, Any] = field(default_factory=dict)  # the backend's own options (its Options dataclass)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("teacher.batch_size must be >= 1")


@dataclass
class PromptConfig:
    """Prompt files. Templates use {question} and, for rationalization, {hint}."""

    style: str = "cot"  # cot
    template: str | None = None  # path to a template file; None: the built-in one for `style`
    rationalize_template: str | None = None  # None: built-in STaR hint template
    few_shot: int = 0  # worked examples (from the training problems' gold answers) prepended to LLM prompts

    def __post_init__(self) -> None:
        _choice("generate.prompt.style", self.style, ("cot",))


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

    def __post_init__(self) -> None:
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
class CurateConfig:
    """Which verified traces become training data."""

    max_per_problem: int = 2  # cap on kept correct traces per problem
    drop_truncated: bool = True  # drop traces that hit max_new_tokens
    include_hinted: bool = True  # keep STaR rationalizations (trained without the hint)
    dedup: bool = True  # drop identical rationales for the same problem
    require_format: bool = True  # drop correct traces with no "Answer:" line or \boxed{} (passed on a bare number)

    def __post_init__(self) -> None:
        if self.max_per_problem < 1:
            raise ConfigError("curate.max_per_problem must be >= 1")


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
    gradient_checkpointing: bool = False  # trades compute for memory; off: small students fit anyway
    dtype: str = "auto"  # auto: bf16 mixed precision on GPU, fp32 on CPU
    device: str = "auto"
    seed: int = 0
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
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
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    task: str = "rationale"  # multitask students only: the task prefix they are evaluated under (rationale | label)

    def __post_init__(self) -> None:
        for m in self.models:
            _choice("eval.models[]", m, ("teacher", "student_before", "student_after"))
        _choice("eval.task", self.task, ("rationale", "label"))


@dataclass
class ReportConfig:
    formats: list[str] = field(default_factory=lambda: ["md", "html"])

    def __post_init__(self) -> None:
        for f in self.formats:
            _choice("report.formats[]", f, ("md", "html"))


@dataclass
class CompareConfig:
    """`reasondistill compare`: objectives trained on the same data and step budget.

    Each entry: {name, method, objective: {...}, init: <earlier entry>, train: {TrainConfig fields}}.
    """

    entries: list[dict[str, Any]] = field(default_factory=list)
    max_steps: int = -1  # > 0: the same optimizer-step budget for every entry
    baseline: bool = True  # also evaluate the untrained train.student: the bar every entry must clear


@dataclass
class Recipe:
    """A whole pipeline run. YAML recipes mirror this nesting 1:1."""

    name: str = "default"
    problems: ProblemsConfig = field(default_factory=ProblemsConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not one of: {', '.join(allowed)}")


# ---------------------------------------------------------------------------
# dict <-> dataclass


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
        else:
            kwargs[key] = _coerce(value, tp, dotted)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'recipe'}: {e}") from None


def _coerce(value: Any, tp: Any, dotted: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp) or tp
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (int, float, str, bool) and not isinstance(value, origin):
        raise ConfigError(f"recipe key '{dotted}' must be {origin.__name__}, got {value!r}")
    if origin is int and isinstance(value, bool):
        raise ConfigError(f"recipe key '{dotted}' must be int, got {value!r}")
    if origin is list and not isinstance(value, list):
        raise ConfigError(f"recipe key '{dotted}' must be a list, got {value!r}")
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"recipe key '{dotted}' must be a mapping, got {value!r}")
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` strings to a nested dict; values parse as YAML scalars/lists."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
        node[parts[-1]] = value
    return data


BUILTIN_RECIPES = {
    "default": "smollm2-135m/sft/program_teacher.yaml",
    "program-teacher": "smollm2-135m/sft/program_teacher.yaml",
    "llm-teacher": "smollm2-135m/sft/llm_teacher.yaml",
    "compare": "smollm2-135m/compare/objectives.yaml",
}


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
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    data = apply_overrides(data, overrides or [])
    try:
        return build(Recipe, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(to_dict(recipe), sort_keys=False)
