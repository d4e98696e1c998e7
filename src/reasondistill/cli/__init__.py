"""Command line: ``reasondistill run [RECIPE]`` chains every stage; each stage also runs alone.

Every command takes trailing ``section.key=value`` overrides applied on top of the
recipe (``--recipe``, default: the built-in ``default``), so one recipe format drives
both the whole pipeline and single stages. This module is the one error boundary
(:func:`main`); the parser is in :mod:`.parser` and the commands in :mod:`.runs` (whole run
folders), :mod:`.stages` (one stage on named files) and :mod:`.evaluation` (models, reports).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
import traceback

from ..backends.masking import install_log_filter, mask
from ..errors import OutputError, ReasondistillError, ServiceError
from ..guards import check_int_flags
from . import evaluation, runs, stages
from .parser import build_parser
from .runs import _runs_root, run_recipe

__all__ = ["COMMANDS", "build_parser", "main", "parse_args", "run_recipe", "_runs_root"]

log = logging.getLogger("reasondistill")

COMMANDS = {"run": runs._cmd_run, "compare": runs._cmd_compare, "loop": runs._cmd_loop,
            "problems": stages._cmd_problems, "generate": stages._cmd_generate, "verify": stages._cmd_verify,
            "curate": stages._cmd_curate, "pairs": stages._cmd_pairs, "train": stages._cmd_train,
            "launch-config": stages._cmd_launch_config, "evaluate": evaluation._cmd_evaluate,
            "report": evaluation._cmd_report, "view": evaluation._cmd_view, "recipes": evaluation._cmd_recipes,
            "env": evaluation._cmd_env, "export": evaluation._cmd_export}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    # overrides may follow options (`problems SRC --out D a.b=c`): argparse leaves those unknown
    args, unknown = parser.parse_known_args(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    check_int_flags(sub.choices[args.command]._actions, args)
    stray = [u for u in unknown if u.startswith("-") or "=" not in u]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if unknown:
        if not hasattr(args, "overrides"):
            parser.error(f"'{args.command}' takes no KEY=VALUE overrides: {' '.join(unknown)}")
        args.overrides = list(args.overrides) + unknown
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM raised as an exception, so it unwinds like Ctrl-C: temp files are removed,
    finished records stay on disk, and the same resume hint is printed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _flag_for(args: argparse.Namespace, override: str) -> str | None:
    """The option the user typed (``--n-train -3``) when a command turned it into ``override``."""
    if override in getattr(args, "overrides", []):
        return None  # typed as key=value: the override itself is what the user typed
    key, value = override.split("=", 1)
    try:  # argparse keeps its actions private; naming the flag is a nicety, never a new failure
        sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        actions = sub.choices[args.command]._actions
    except (AttributeError, KeyError, StopIteration):
        return None
    for action in actions:
        typed = getattr(args, action.dest, None)
        if action.dest == key.rsplit(".", 1)[-1] and typed is not None and str(typed) == value:
            return f"{action.option_strings[-1]} {value}" if action.option_strings else f"{action.dest} {value!r}"
    return None


def _os_error(e: OSError) -> str:
    """One line for an OS failure, naming the path and what to do."""
    from ..io import write_error

    where = e.filename if e.filename is not None else "output"
    if isinstance(wrapped := write_error(where, e), ReasondistillError):
        return str(wrapped)
    what = {errno.ENOENT: "file or folder not found", errno.EISDIR: "is a folder, expected a file",
            errno.ENOTDIR: "a file is in the way where a folder is needed",
            errno.EEXIST: "already exists and is in the way; choose another --out"}.get(e.errno, e.strerror or str(e))
    return f"{where}: {what}"


def main(argv: list[str] | None = None) -> int:
    """The one error boundary of every command.

    Exit codes: 0 done; 2 bad input, recipe or option (one line naming the file:line/field,
    config key or flag); 1 the environment failed (disk full, permissions) or an unexpected
    error (a short message; ``-v`` prints the traceback); 130 Ctrl-C and 143 SIGTERM, both
    with the resume hint.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    verbose = False
    try:
        args = parse_args(argv)
        verbose = args.verbose
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        install_log_filter()  # API keys never reach a log line
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as e:
        how, code = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else ("interrupted", 130)
        print(f"reasondistill: {how}; finished records are on disk; run the same command to resume",
              file=sys.stderr)
        return code
    except ReasondistillError as e:
        if verbose:
            traceback.print_exc()
        override = getattr(e, "override", None)
        flag = _flag_for(args, override) if override else None
        message = f"{flag}: {e.detail}" if flag and getattr(e, "detail", None) else str(e)
        print(f"reasondistill: error: {mask(message)}", file=sys.stderr)
        return 1 if isinstance(e, (OutputError, ServiceError)) else 2
    except OSError as e:
        if verbose:
            traceback.print_exc()
        print(f"reasondistill: error: {_os_error(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 (the boundary: anything else is a bug or an unhandled case)
        if verbose:
            traceback.print_exc()
        first = next((line for line in mask(str(e)).splitlines() if line.strip()), "")  # mask, then cut
        print(f"reasondistill: error: unexpected {type(e).__name__}: {first[:300]}\n"
              "reasondistill: this is a bug or an unhandled case; re-run with -v (reasondistill -v COMMAND ...) "
              "for the traceback", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
