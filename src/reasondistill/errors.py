"""Errors a user can act on: each names the file, line and field at fault."""

from __future__ import annotations

from pathlib import Path


class ReasondistillError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class ConfigError(ReasondistillError, ValueError):
    """A recipe or option is invalid. ``override`` is the command-line ``key=value`` at fault,
    when there is one, and ``detail`` the message without the place prefix."""

    override: str | None = None
    detail: str | None = None


class InputError(ReasondistillError, ValueError):
    """A data file is malformed. The message names ``file:line`` and the field."""

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        where = self.file or "<input>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


class OutputError(ReasondistillError):
    """An output cannot be written (disk full, permissions, a file where a folder should be).
    The message names the path; the output it would have replaced is left as it was."""

    errno: int | None = None


class ServiceError(ReasondistillError):
    """An external engine or server failed us: unreachable within its connect timeout, refused
    every request, or lost a worker with no retries left. The message names the URL or address
    and the option to check; exit 1, as for other environment failures."""
