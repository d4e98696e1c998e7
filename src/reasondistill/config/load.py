"""Building a :class:`~reasondistill.config.schema.Recipe`: YAML reading, ``a.b=c`` overrides,
dict -> dataclass with errors naming the dotted key, the integer rules, built-in recipe names.

Precedence: dataclass defaults < YAML recipe < ``a.b=c`` overrides. Unknown keys are errors that
name the offending key, so a typo never silently falls back to a default. A sub-section declared
by a component (:func:`~reasondistill.config.schema.section`) is built with that component's
options class, so one :func:`build` checks the whole recipe before any data is read.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import io
from ..errors import ConfigError, InputError
from .schema import TEACHER_NAME, Recipe, TrainConfig, field_types

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
        if f.name in kwargs and strip_optional(hints[f.name]) is int:
            default = f.default if f.default is not dataclasses.MISSING else None
            check_int(f"{where}.{f.name}" if where else f.name, kwargs[f.name], *int_floor(cls, f.name, default))


def strip_optional(tp: Any) -> Any:
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
    hints = field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown recipe key '{dotted}'{hint}")
        tp = strip_optional(hints[key])
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
    return f"{dotted}.{name}" if isinstance(name, str) and TEACHER_NAME.fullmatch(name) else f"{dotted}[{index}]"


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
        tp = strip_optional(tp) if i else tp
        if tp is TrainConfig and part == "objective":
            return None  # the objective's own options: their types live with the objective (train/)
        if (shapes := _union_shapes(tp)) is not None:  # teacher.<field> or teacher.<name>.<field>
            one, many = shapes
            tp = field_types(one).get(part, many)  # not a field of one: the name of a list entry
        elif dataclasses.is_dataclass(tp):
            hints = field_types(tp)
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
    if strip_optional(tp) is not str:
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
    for at, item in enumerate(overrides):
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
        if parts[-1] == "backend" and node.get("backend") != value and node is not data:
            # options belong to the backend they were written for: another backend starts from its own
            # defaults, plus whatever options these overrides give it (applied in any order)
            given = [o.split("=", 1)[0].strip() for o in overrides[:at]]
            prefix = ".".join(parts[:-1]) + ".options."
            kept = {k: v for k, v in (node.get("options") or {}).items()
                    if any(g.startswith(prefix + k) for g in given)}
            node.pop("options", None)
            if kept:
                node["options"] = kept
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
    "reproduce-on-policy": "smollm2-135m/reproduce/on_policy.yaml",
    "reproduce-token-kd": "smollm2-135m/reproduce/token_kd.yaml",
    "on-policy-teacher": "smollm2-135m/sft/on_policy_teacher.yaml",  # reproduce-on-policy's live teacher
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

