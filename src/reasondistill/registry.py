"""One lazy ``"module:attr"`` loader for every name table.

Each package keeps its own table as a plain dict in its ``__init__`` (backends, grading,
curation policies, objectives, losses, generation modes, problem sources; tasks in
``tasks.py``). Entries are import strings (or small rows of them), so naming one in a recipe
imports nothing until it is used, and adding one is a file plus a row. Unknown names fail with the table's names and a close match.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError


def load(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ValueError(f"registry target {target!r} must look like 'package.module:attr'")
    return getattr(importlib.import_module(module), attr)


def check(table: Mapping[str, Any], name: str, what: str, *, extra: tuple[str, ...] = ()) -> str:
    """``name`` when it is a row of ``table`` (or one of ``extra``), else a :class:`ConfigError`
    that lists the rows and suggests the closest one."""
    if name in table or name in extra:
        return name
    names = [*extra, *table]
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown {what} '{name}' (available: {', '.join(names)}){hint}")


def lookup(table: Mapping[str, str], name: str, what: str) -> Any:
    """Load the entry ``name`` of ``table``; an unknown name is a :class:`ConfigError`."""
    return load(table[check(table, name, what)])
