"""Training losses: one pure tensor function per file; the shared contract is in ``base.py``.

Name table of rows (:class:`Row`, lazy ``module:attr`` strings, no import side effects); trainers look
losses up here instead of branching on a loss name. A loss with options of its own declares a frozen
options dataclass beside its function (its fields are the function's keyword-only parameters, checked
in ``__post_init__`` with a :class:`~reasondistill.errors.ConfigError` that starts with the option's
name) and its row names that class; a loss without options names none. Every loss takes a sparse
(offline KD) or a full (GKD's live teacher) teacher alike, so both objectives choose from the whole
table with the same options (:func:`check_options`, :func:`configured_loss`).

Options modules import no torch: a recipe's loss options are checked before anything heavy loads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_PKG = "reasondistill.train.losses"


@dataclass(frozen=True)
class Row:
    loss: str  # "module:function"
    options: str | None = None  # "module:Class": the loss's own options dataclass (None: it takes none)


_SKEW = f"{_PKG}.skew_kl:SkewOptions"

LOSSES: dict[str, Row] = {
    "forward_kl": Row(f"{_PKG}.forward_kl:forward_kl"),
    "reverse_kl": Row(f"{_PKG}.reverse_kl:reverse_kl"),
    "jsd": Row(f"{_PKG}.jsd:jsd", f"{_PKG}.jsd:JSDOptions"),
    "skew_forward_kl": Row(f"{_PKG}.skew_kl:skew_forward_kl", _SKEW),
    "skew_reverse_kl": Row(f"{_PKG}.skew_kl:skew_reverse_kl", _SKEW),
    "tv": Row(f"{_PKG}.tv:tv"),
}


def get_loss(name: str) -> Callable[..., Any]:
    """The loss function registered as ``name``."""
    from ...registry import check, load
    return load(LOSSES[check(LOSSES, name, "loss")].loss)


def options_class(name: str) -> type | None:
    """The options dataclass of loss ``name`` (None: it takes none)."""
    from ...registry import load
    target = LOSSES[name].options
    return None if target is None else load(target)


def build_options(section: str, name: str, values: Mapping[str, Any]) -> Any:
    """Loss ``name``'s options from the ``values`` it declares (None when it takes none); a bad
    value is a :class:`ConfigError` naming ``section.option``."""
    from ...errors import ConfigError

    cls = options_class(name)
    if cls is None:
        return None
    try:
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})
    except ConfigError as e:
        raise ConfigError(f"{section}.{e}") from None


def check_options(section: str, loss: str, values: Mapping[str, Any]) -> Any:
    """The options of ``loss`` (None when it takes none), built from ``values`` (option name -> value)
    at recipe build time; :class:`ConfigError` (naming ``section``, e.g. ``kd``) unless ``loss`` is in the
    table, every value is an option of some loss, and each is in range for every loss that declares it,
    whichever loss is named, so switching loss never meets a stale bad value."""
    from ...errors import ConfigError

    if loss not in LOSSES:
        raise ConfigError(f"{section}.loss = {loss!r} is not one of: {', '.join(LOSSES)}")
    declared: set[str] = set()
    for name in LOSSES:
        cls = options_class(name)
        if cls is not None:
            declared |= {f.name for f in dataclasses.fields(cls)}
            build_options(section, name, values)
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ConfigError(f"{section}.loss_options: {', '.join(map(repr, unknown))} is not an option of any loss "
                          f"(options: {', '.join(sorted(declared)) or 'none'})")
    return build_options(section, loss, values)


def configured_loss(cfg: Any) -> Callable[..., Any]:
    """``loss(student_logits, teacher, mask, temperature)`` for an objective config with ``loss`` and
    ``loss_values()``: the table's function with its options bound."""
    fn = get_loss(cfg.loss)
    options = build_options("train.objective", cfg.loss, cfg.loss_values())
    return fn if options is None else functools.partial(fn, **dataclasses.asdict(options))


def loss_values(section: str, plain: Mapping[str, Any], extra: Any) -> dict[str, Any]:
    """An objective config's loss options by name: its ``plain`` keys (the built-in losses' options,
    kept as recipe keys of their own) and its ``loss_options`` mapping, which may not repeat them."""
    from ...errors import ConfigError

    if not isinstance(extra, Mapping):
        raise ConfigError(f"{section}.loss_options must be a mapping of option: value, got {extra!r}")
    twice = sorted(set(plain) & set(extra))
    if twice:
        raise ConfigError(f"{section}.loss_options.{twice[0]}: set {section}.{twice[0]} instead")
    return {**plain, **extra}
