"""The commands that make a whole run folder: ``run``, ``compare`` and ``loop``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import io
from ..config import Recipe, load_recipe
from ..guards import check_out, recipe_inputs
from ..errors import ReasondistillError
from ..layout import MANIFEST, Layout, run_folder


def run_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe for `run`; in `run key=value` the first override lands in the RECIPE slot."""
    if args.recipe and "=" in args.recipe and not Path(args.recipe).exists():
        args.overrides, args.recipe = [args.recipe, *args.overrides], None
    return load_recipe(args.recipe, args.overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from .. import pipeline
    _runs_root(args)
    recipe = run_recipe(args)
    out = _run_out(args, recipe)
    result = pipeline.run(recipe, out, first=args.first, last=args.last)
    if pipeline.select(args.first, args.last)[-1].name == "report":
        _print_summary(result, out)
    else:
        print(f"\nrun folder: {out} (stopped after {args.last})")
    _print_failed_rows(Layout(out), recipe)
    return 0


def _print_failed_rows(layout: Layout, recipe: Recipe) -> None:
    """The rows of this run's generate and evaluate stages whose requests failed, and the most
    common cause (URL, status, option), as the last lines: the same command retries them."""
    manifests = [("generate", layout.manifest("generate"))] + [
        (f"evaluate {m}", layout.eval_dir(m) / MANIFEST) for m in recipe.eval.models]
    for what, path in manifests:
        try:
            outputs = io.read_manifest(path).outputs  # type: ignore[union-attr]
        except (OSError, ReasondistillError, AttributeError):
            continue
        if outputs.get("n_errors"):
            print(f"  {what}: {outputs.get('errors') or str(outputs['n_errors']) + ' failed rows'}; "
                  "run the same command to retry them")


def _runs_root(args: argparse.Namespace) -> None:
    from ..pipeline import RUNS_ENV
    if getattr(args, "runs_root", None) is not None:
        os.environ[RUNS_ENV] = str(args.runs_root)


def _named_recipe(args: argparse.Namespace, default: str, extra: list[str] | None = None) -> Recipe:
    """The recipe of `compare`/`loop` (default: the built-in recipe of the command's name); a first
    override may sit in the RECIPE slot."""
    _runs_root(args)
    if args.recipe is None or ("=" in args.recipe and not Path(args.recipe).exists()):
        args.overrides = ([args.recipe] if args.recipe else []) + list(args.overrides)
        args.recipe = default
    return load_recipe(args.recipe, list(args.overrides) + (extra or []))


def _cmd_loop(args: argparse.Namespace) -> int:
    from .. import loop
    recipe = _named_recipe(args, "loop", [f"loop.rounds={args.rounds}"] if args.rounds is not None else [])
    out = _run_out(args, recipe)
    result = loop.run(recipe, out)
    print(loop.format_table(result))
    print(f"\n{Layout(out).loop_json}; report: {Layout(out).report_html}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .. import compare
    recipe = _named_recipe(args, "compare")
    out = _run_out(args, recipe)
    rows = compare.run(recipe, out)
    print(compare.format_table(rows, compare.load_baseline(out), compare.load_teacher(out)))
    print(f"\n{Layout(out).compare_json}")
    return 0


def _run_out(args: argparse.Namespace, recipe: Recipe) -> Path:
    """The run folder of `run`, `compare` and `loop`: ``--out``, else ``runs/<recipe name>``. It may
    hold none of the recipe's inputs where it writes; its own recipe.yaml may be the recipe (a re-run
    rewrites it with the same recipe)."""
    out = args.out or run_folder(recipe.name)
    check_out(out, recipe_inputs(recipe, args.recipe), stage=None, writes="run",
              keep=(Layout(out).recipe_file.name,))
    return out


def _print_summary(report: dict, out: Path) -> None:
    print(f"\nrun folder: {out}")
    for name in ("teacher", "student_before", "student_after"):
        r = report.get(name)
        if r:
            lo, hi = r["ci95"]
            print(f"  {name:15s} accuracy {r['accuracy']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  "
                  f"format {r.get('format_rate', 0):.2f}  tokens/answer {r.get('mean_tokens', 0):.1f}")
    print(f"  teacher calls {report['teacher_calls']} (cached {report['cached_teacher_calls']}), "
          f"wall {report['wall_seconds']:.0f}s; report: {Layout(out).report_html}")
