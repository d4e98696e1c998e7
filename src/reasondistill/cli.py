"""Command line: ``reasondistill run [RECIPE]`` chains every stage; each stage also runs alone.

Every command takes trailing ``section.key=value`` overrides applied on top of the
recipe (``--recipe``, default: the built-in ``default``), so one recipe format drives
both the whole pipeline and single stages.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from .backends.masking import install_log_filter, mask
from .config import BUILTIN_RECIPES, Recipe, load_recipe
from .errors import ConfigError, OutputError, ReasondistillError, ServiceError
from .guards import check_int_flags, check_out, model_input, named, recipe_inputs
from .layout import FILES, Layout
from .pipeline import STAGE_NAMES

log = logging.getLogger("reasondistill")

OVERRIDES_HELP = "recipe overrides as section.key=value, e.g. train.epochs=2 generate.samples=8"


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None,
                   help=f"recipe YAML or built-in name ({', '.join(BUILTIN_RECIPES)}); default: default")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)


def _recipe(args: argparse.Namespace, extra: list[str] | None = None) -> Recipe:
    """The recipe with the command's overrides, its names checked against the tables."""
    from .pipeline import check_recipe
    recipe = load_recipe(args.recipe, (extra or []) + list(args.overrides))
    try:
        check_recipe(recipe)
    except ConfigError as e:  # an objective's or backend's own option: name the override that set it
        typed = [o for o in args.overrides if "=" in o and o.split("=", 1)[0].strip() in str(e)]
        if not typed or getattr(e, "override", None):
            raise
        err = ConfigError(f"override '{typed[-1]}': {e}")
        err.override, err.detail = typed[-1], str(e)
        raise err from None
    return recipe


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="reasondistill", description=(
        "Distil reasoning from a teacher (an LLM or a program) into a small student model. "
        "Stages: problems -> generate -> verify -> curate -> train -> evaluate -> report."))
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the whole pipeline from a recipe (default: built-in 'default')",
                       description="Run every stage into --out; finished stages are skipped on re-run.")
    p.add_argument("recipe", nargs="?", default=None,
                   help=f"recipe YAML or built-in name ({', '.join(BUILTIN_RECIPES)}); default: default")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--from", dest="first", choices=STAGE_NAMES, default=None, metavar="STAGE",
                   help=f"re-run from this stage on (earlier ones must have finished): {', '.join(STAGE_NAMES)}")
    p.add_argument("--until", dest="last", choices=STAGE_NAMES, default=None, metavar="STAGE",
                   help="stop after this stage")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)

    p = sub.add_parser("compare", help="train several objectives on the same data and step budget, compare them",
                       description="Runs the data stages once, then trains and evaluates every entry of "
                                   "compare.entries; prints a table and writes DIR/compare.json.")
    p.add_argument("recipe", nargs="?", default=None, help="recipe YAML or built-in name; default: compare")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)

    p = sub.add_parser("loop", help="rounds: evaluate the student, pick problems, teacher traces, curate, retrain",
                       description="Runs loop.rounds rounds into DIR/round-<r>/ (resumable); prints the per-round "
                                   "table and writes DIR/loop.json and DIR/report.{json,md,html}.")
    p.add_argument("recipe", nargs="?", default=None, help="recipe YAML or built-in name; default: loop")
    p.add_argument("--rounds", type=int, default=None, help="number of rounds (loop.rounds)")
    p.add_argument("--out", type=Path, default=None, help="loop folder (default: runs/<recipe name>)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)

    p = sub.add_parser("problems", help="load or generate problems into DIR (train.jsonl, eval.jsonl)",
                       description="SOURCE is a file (.jsonl/.json/.parquet/.csv), an HF datasets folder "
                                   "saved with save_to_disk, or a reasoning-gym task name.")
    p.add_argument("source", help="file, folder, or reasoning-gym task name (e.g. chain_sum)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--eval-source", default=None, help="separate file for held-out problems")
    p.add_argument("--n-train", type=int, default=None, help="number of training problems (0: none)")
    p.add_argument("--n-eval", type=int, default=None, help="number of held-out problems (0: none)")
    p.add_argument("--seed", type=int, default=None, help="shuffle / generation seed")
    p.add_argument("--answer-format", choices=["auto", "gsm8k", "boxed", "raw"], default=None,
                   help="how to parse the gold answer column")
    p.add_argument("--on-error", choices=["raise", "skip"], default=None,
                   help="bad rows: fail (default) or skip and count them")
    _add_recipe_args(p)

    p = sub.add_parser("generate", help="sample teacher traces for problems (cached, resumable)")
    p.add_argument("--problems", type=Path, required=True, help="problems JSONL (e.g. DIR/train.jsonl)")
    p.add_argument("--out", type=Path, required=True, help="output folder (traces.jsonl)")
    p.add_argument("--probe", type=Path, default=None,
                   help="the student's answers on these problems (a run's probe/samples.jsonl), for "
                        "generate.hints=ssb and generate.tailored")
    _add_recipe_args(p)

    p = sub.add_parser("verify", help="check each trace's final answer against the gold answer")
    p.add_argument("--problems", type=Path, required=True)
    p.add_argument("--traces", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (verdicts.jsonl)")
    _add_recipe_args(p)

    p = sub.add_parser("curate", help="select training traces; keep incorrect ones as negatives")
    p.add_argument("--problems", type=Path, required=True)
    p.add_argument("--traces", type=Path, required=True)
    p.add_argument("--verdicts", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (train.jsonl, negatives.jsonl, ...)")
    _add_recipe_args(p)

    p = sub.add_parser("pairs", help="build preference pairs (correct vs incorrect traces of a problem)")
    p.add_argument("--train", type=Path, required=True, help="curated train.jsonl (correct traces)")
    p.add_argument("--negatives", type=Path, required=True, help="curated negatives.jsonl (incorrect traces)")
    p.add_argument("--out", type=Path, required=True, help="output folder (pairs.jsonl)")
    p.add_argument("--max-pairs-per-problem", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--student-traces", type=Path, default=None,
                   help="tailored learning: also pair these student mistakes (generate/student_traces.jsonl) "
                        "with their kept corrections")

    from .train import DATA_KINDS, OBJECTIVES
    p = sub.add_parser("train", help="train the student with one objective",
                       description="Objectives and their --data: " + "; ".join(
                           f"{n}: {DATA_KINDS[o.data]}" for n, o in OBJECTIVES.items())
                       + ". Objective options: train.objective.KEY=VALUE.")
    p.add_argument("method", choices=list(OBJECTIVES), help="training objective")
    p.add_argument("--data", type=Path, required=True, help="the objective's input (see above)")
    p.add_argument("--logprobs", type=Path, default=None, help="teacher logprob store (kd): generate/logprobs")
    p.add_argument("--out", type=Path, required=True, help="output folder (model/ is the checkpoint)")
    p.add_argument("--launch", choices=["ddp", "fsdp", "zero2", "zero3"], default=None,
                   help="run under `accelerate launch` with the packaged config (see `reasondistill launch-config`)")
    p.add_argument("--num-processes", type=int, default=None,
                   help="processes for --launch (default: the CUDA devices, else 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved plan (processes, precision, batches, steps, memory) and exit")
    _add_recipe_args(p)

    p = sub.add_parser("launch-config", help="print the path of a packaged accelerate config",
                       description="For `accelerate launch --config_file PATH -m reasondistill train ...`.")
    p.add_argument("name", choices=["ddp", "fsdp", "zero2", "zero3"])

    p = sub.add_parser("evaluate", help="evaluate a model (or the recipe's teacher) on held-out problems",
                       description="Evaluate (--model, --problems, --out); or compare two finished evaluations "
                                   "(--compare A B), refused when their settings differ besides the model; or "
                                   "audit one's checker (--audit EVAL_DIR).")
    p.add_argument("--model", help="'teacher' for the recipe's teacher, or a model: folder, .gguf, packaged name")
    p.add_argument("--problems", type=Path, help="held-out problems (e.g. DIR/eval.jsonl)")
    p.add_argument("--out", type=Path, help="output folder (samples.jsonl, summary.json, audit.jsonl)")
    p.add_argument("--base-url", default=None, metavar="URL",
                   help="evaluate the model an OpenAI-compatible server at URL serves under the --model name "
                        "(the openai backend; shorthand for teacher.backend=openai teacher.model=NAME "
                        "teacher.options.base_url=URL --model teacher)")
    p.add_argument("--compare", nargs="+", type=Path, metavar="A B",
                   help="evaluation folders (or summary.json files): both scores and B - A with a paired interval; "
                        "several seeds per side as A1 A2 .. vs B1 B2 ..: seed means, B - A with an interval over "
                        "training seeds and problems, and a verdict")
    p.add_argument("--allow-different", nargs="+", default=[], metavar="SETTING",
                   help="with --compare: settings (dotted, e.g. sampling.max_new_tokens) or groups (libraries) "
                        "that may differ")
    p.add_argument("--force", action="store_true", help="with --compare: compare even when settings differ")
    p.add_argument("--audit", type=Path, metavar="EVAL_DIR",
                   help="re-check an evaluation folder with two checkers; disagreements to EVAL_DIR/audit.jsonl "
                        "(--problems: the problem file, when the recorded one moved)")
    p.add_argument("--harness", choices=["lm-eval", "lighteval"], default=None,
                   help="evaluate through an external harness instead (offline, over --problems: a Problem or "
                        "dataset .jsonl, or a folder with eval.jsonl/test.jsonl); writes result.json with its "
                        "version and its score beside ours on the same generations")
    _add_recipe_args(p)

    p = sub.add_parser("export", help="write a model as a self-contained HF folder (weights, tokenizer, chat "
                                      "template, generation_config.json)")
    p.add_argument("model", help="a run folder (its train/model), a model folder, .gguf or packaged name")
    p.add_argument("--out", type=Path, required=True, help="the folder to write")
    p.add_argument("--dtype", default="float32", help="weights dtype of the export (default float32)")

    p = sub.add_parser("report", help="(re)write report.json/.md/.html for a run folder")
    p.add_argument("run_dir", type=Path)
    _add_recipe_args(p)

    p = sub.add_parser("view", help="browse a run's problems and traces in a local web page",
                       description="Serves a page on 127.0.0.1 to filter, search and open every teacher trace and "
                                   "evaluated answer of RUN_DIR (read-only). Ctrl-C stops it.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port; default 8765)")

    for name in ("run", "compare", "loop"):
        sub.choices[name].add_argument(
            "--runs-root", type=Path, default=None,
            help="where run:NAME model references find (or make) NAME's run folder (default: "
                 "$REASONDISTILL_RUNS, else runs)")

    sub.add_parser("recipes", help="list built-in recipes")

    p = sub.add_parser("env", help="show what this machine computes natively and the dtype auto picks",
                       description="torch, CPU capability, native bf16 (and why), threads, CUDA devices, the "
                                   "dtype 'auto' picks for training and evaluation, installed optional backends. "
                                   "Loads no model.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return ap


def _stage_layout(out: Path, stage: str, **inputs: Path) -> Layout:
    """The layout of a stage run on its own: the user's input files, and ``--out`` as its folder."""
    return Layout(out).override(dirs={stage: out}, files=inputs)


def run_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe for `run`; in `run key=value` the first override lands in the RECIPE slot."""
    if args.recipe and "=" in args.recipe and not Path(args.recipe).exists():
        args.overrides, args.recipe = [args.recipe, *args.overrides], None
    return load_recipe(args.recipe, args.overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from . import pipeline
    _runs_root(args)
    recipe = run_recipe(args)
    out = args.out or Path("runs") / recipe.name
    _check_run_out(out, recipe, args.recipe)
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
    folders = [("generate", layout.traces.parent)] + [(f"evaluate {m}", layout.eval_dir(m)) for m in recipe.eval.models]
    for what, folder in folders:
        try:
            outputs = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("outputs") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if outputs.get("n_errors"):
            print(f"  {what}: {outputs.get('errors') or str(outputs['n_errors']) + ' failed rows'}; "
                  "run the same command to retry them")


def _runs_root(args: argparse.Namespace) -> None:
    from .pipeline import RUNS_ENV
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
    from . import loop
    recipe = _named_recipe(args, "loop", [f"loop.rounds={args.rounds}"] if args.rounds is not None else [])
    out = args.out or Path("runs") / recipe.name
    _check_run_out(out, recipe, args.recipe)
    result = loop.run(recipe, out)
    print(loop.format_table(result))
    print(f"\n{Layout(out).loop_json}; report: {Layout(out).report_html}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from . import compare
    recipe = _named_recipe(args, "compare")
    out = args.out or Path("runs") / recipe.name
    _check_run_out(out, recipe, args.recipe)
    rows = compare.run(recipe, out)
    print(compare.format_table(rows, compare.load_baseline(out), compare.load_teacher(out)))
    print(f"\n{out / 'compare.json'}")
    return 0


def _check_run_out(out: Path, recipe: Recipe, recipe_arg: str | None) -> None:
    """A run folder may hold none of the recipe's inputs where it writes; its own recipe.yaml may
    be the recipe (a re-run rewrites it with the same recipe)."""
    check_out(out, recipe_inputs(recipe, recipe_arg), stage=None, writes="run",
              keep=(Layout(out).recipe_file.name,))


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


def _cmd_problems(args: argparse.Namespace) -> int:
    from . import problems
    extra = []
    src = args.source
    if Path(src).exists() or any(src.endswith(s) for s in (".jsonl", ".json", ".parquet", ".csv")):
        extra.append(f"problems.source={src}")
    else:
        extra += ["problems.source=reasoning_gym", f"problems.task={src.removeprefix('reasoning_gym:')}"]
    for flag, key in (("eval_source", "eval_source"), ("n_train", "n_train"), ("n_eval", "n_eval"),
                      ("seed", "seed"), ("answer_format", "answer_format"), ("on_error", "on_error")):
        val = getattr(args, flag)
        if val is not None:
            extra.append(f"problems.{key}={val}")
    recipe = _recipe(args, extra)
    check_out(args.out, [named("source", src) if Path(src).exists() else None,
                         named("--eval-source", args.eval_source), named("--recipe", args.recipe)],
              stage="problems", writes="problems")
    m = problems.run(recipe, Layout(args.out).override(dirs={"problems": args.out}))
    print(json.dumps({"out": str(args.out), **{k: m["outputs"][k] for k in ("n_train", "n_eval", "skipped")}}))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from . import generate
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--probe", args.probe),
                         named("--recipe", args.recipe), *recipe_inputs(recipe, None, sources=False)],
              stage="generate", writes="generate")
    m = generate.run(recipe, _stage_layout(args.out, "generate", train_problems=args.problems,
                                                  probe_samples=args.probe))
    out, skipped = m["outputs"], m["this_run"]["skipped"]
    print(json.dumps({"out": str(args.out), "teacher_calls": 0 if skipped else out["teacher_calls"],
                      "cached_teacher_calls": out["n_traces"] if skipped else out["cached_teacher_calls"],
                      "skipped": skipped, "n_traces": out["n_traces"], "n_errors": out.get("n_errors", 0),
                      **{k: out[k] for k in ("errors", "n_over_context") if out.get(k)}}))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from . import verify
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--traces", args.traces),
                         named("--recipe", args.recipe)], stage="verify", writes="verify")
    m = verify.run(recipe, _stage_layout(args.out, "verify", train_problems=args.problems, traces=args.traces))
    print(json.dumps({"out": str(args.out), **{k: v for k, v in m["outputs"].items() if k != "files"}}))
    return 0


def _cmd_curate(args: argparse.Namespace) -> int:
    from .curate import run as curate_run
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--traces", args.traces),
                         named("--verdicts", args.verdicts), named("--recipe", args.recipe),
                         *recipe_inputs(recipe, None, sources=False)], stage="curate", writes="curate")
    m = curate_run(recipe, _stage_layout(args.out, "curate", train_problems=args.problems, traces=args.traces,
                                                verdicts=args.verdicts))
    print(json.dumps({"out": str(args.out), **{k: v for k, v in m["outputs"].items() if k != "files"}}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import run_objective
    from .train.base import checkpoint_path
    recipe = _recipe(args, [f"train.method={args.method}"])
    if not args.dry_run:
        check_out(args.out, [named("--data", args.data), named("--logprobs", args.logprobs),
                             named("--recipe", args.recipe), *recipe_inputs(recipe, None, sources=False)],
                  stage="train", writes="train")
    if args.launch or args.dry_run:
        from .train import launch
        n = args.num_processes or _cuda_count()
        if args.dry_run:
            from .train.plan import plan
            print(plan(recipe.train, args.data, launch_name=args.launch, num_processes=n).format())
            if args.launch:
                print("  command:         " + " ".join(launch.command(args.launch, n, _train_argv(args),
                                                                     grad_accum=recipe.train.grad_accum, check=False)))
            return 0
        if launch.world_size() == 1:  # not yet launched: start the processes, each running this command
            launch.check(args.launch, recipe.train)
            return launch.run(args.launch, n, _train_argv(args), grad_accum=recipe.train.grad_accum)
    m = run_objective(recipe.train, args.data, args.out, logprobs=args.logprobs, verify_cfg=recipe.verify,
                      prompt_cfg=recipe.generate.prompt)
    out = m["outputs"]
    if "rank" in m["this_run"]:  # a launched process other than rank 0: rank 0 reports
        return 0
    print(json.dumps({"method": args.method, "model": str(checkpoint_path(args.out, out)), "steps": out.get("steps"),
                      "train_loss": out.get("train_loss")}))
    return 0


def _cuda_count() -> int:
    import torch
    return torch.cuda.device_count() or 1


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The ``train`` command each launched process runs: this one without ``--launch``."""
    argv = ["train", args.method, "--data", str(args.data), "--out", str(args.out)]
    argv += ["--logprobs", str(args.logprobs)] if args.logprobs else []
    argv += ["--recipe", str(args.recipe)] if args.recipe else []
    return (["-v"] if args.verbose else []) + argv + list(args.overrides)


def _cmd_launch_config(args: argparse.Namespace) -> int:
    from .train.launch import config_path
    print(config_path(args.name))
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from .curate.pairs import build_pairs
    from .curate.tailored import tailored_pairs
    out = Layout(args.out).override(dirs={"pairs": args.out}).pairs
    check_out(args.out, [named("--train", args.train), named("--negatives", args.negatives),
                         named("--student-traces", args.student_traces)], stage="pairs", writes="pairs")
    extra = tailored_pairs(args.train, args.student_traces) if args.student_traces else []
    counts = build_pairs(args.train, args.negatives, out,
                         max_pairs_per_problem=args.max_pairs_per_problem, seed=args.seed, extra=extra)
    print(json.dumps({"out": str(out), **counts}))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate
    from .backends import BackendPool
    if args.compare:
        return _compare_evaluations(args)
    if args.audit:
        from .evaluate.audit import audit_dir
        check_out(args.audit, [named("--problems", args.problems)], stage="evaluate", writes="evaluate",
                  flag="--audit")
        counts = audit_dir(args.audit, problems_path=args.problems, verify_cfg=_recipe(args).verify)
        print(json.dumps({"audit": str(args.audit / "audit.jsonl"), **counts}))
        return 0
    missing = [f"--{k}" for k in ("model", "problems", "out") if getattr(args, k) is None]
    if missing:
        raise ConfigError(f"evaluate needs {', '.join(missing)} (or --compare A B, or --audit EVAL_DIR)")
    served = []
    if args.base_url:  # a served model is evaluated as the recipe's teacher would be, through the openai backend
        from .backends import URL_BACKEND
        served = [f"teacher.backend={URL_BACKEND}", f"teacher.model={args.model}",
                  f"teacher.options.base_url={args.base_url}"]
        args.model = "teacher"
    r = _recipe(args, served)
    if args.harness and args.model == "teacher":
        raise ConfigError("--harness evaluates a model folder (or run folder, .gguf, packaged name), not 'teacher'")
    check_out(args.out, [named("--problems", args.problems), named("--model", model_input(args.model)),
                         named("--recipe", args.recipe), *recipe_inputs(r, None, sources=False)],
              stage=None if args.harness else "evaluate", writes="harness" if args.harness else "evaluate")
    if args.harness:
        from .evaluate import harness
        from .problems.files import read_problem_set
        res = harness.run(args.harness, args.model, read_problem_set(args.problems, r.problems), args.out,
                          eval_cfg=r.eval, verify_cfg=r.verify, prompt_cfg=r.generate.prompt)
        print(json.dumps({k: getattr(res, k) for k in ("harness", "harness_version", "n", "harness_score",
                                                         "our_score", "agreement")}))
        return 0
    name = "teacher" if args.model == "teacher" else (Path(args.model).name or args.model)
    # a teacher's few-shot demos come from the training problems beside the held-out file
    layout = Layout(args.out).override(dirs={f"eval/{name}": args.out}, files={
        "eval_problems": args.problems, "train_problems": Path(args.problems).with_name(FILES["train_problems"][1])})
    if args.model == "teacher":
        with BackendPool() as pool:
            m = evaluate.evaluate_teacher(r, layout, pool)
    else:
        m = evaluate.evaluate_model(r, args.model, name, layout)
    print(json.dumps({"model": name, "n": m["outputs"]["n"], "accuracy": m["outputs"]["accuracy"],
                      "ci95": m["outputs"]["ci95"], "n_errors": m["outputs"].get("n_errors", 0),
                      **{k: m["outputs"][k] for k in ("errors", "n_over_context") if m["outputs"].get(k)}}))
    return 0


def _compare_evaluations(args: argparse.Namespace) -> int:
    """``evaluate --compare A B``: exit 2 with the differing settings named, unless allowed or forced."""
    from .evaluate.compare_scores import compare, compare_seeds, format_result
    words = [str(p) for p in args.compare]
    if "vs" in words:
        cut = words.index("vs")
        sides = args.compare[:cut], args.compare[cut + 1:]
        if not sides[0] or not sides[1] or "vs" in words[cut + 1:]:
            raise ConfigError("--compare: give A1 [A2 ...] vs B1 [B2 ...], with folders on both sides of one 'vs'")
        result = compare_seeds(*sides, allow=args.allow_different, force=args.force)
    elif len(args.compare) == 2:
        result = compare(*args.compare, allow=args.allow_different, force=args.force)
    else:
        raise ConfigError(f"--compare takes two evaluations (A B), or several seeds per side separated by 'vs' "
                          f"(A1 A2 vs B1 B2); got {len(args.compare)} paths and no 'vs'")
    print(format_result(result))
    print(json.dumps(result))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .device import normalize
    from .evaluate.harness import export
    from .evaluate.harness.export import source_model
    try:  # before the model loads: a typo costs nothing
        normalize(args.dtype)
    except ConfigError as e:
        raise ConfigError(f"--dtype {args.dtype}: {e}") from None
    check_out(args.out, [named("model", model_input(source_model(args.model)))], stage=None, writes="export")
    print(json.dumps({"out": export(args.model, args.out, dtype=args.dtype).path}))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from . import report
    layout = Layout(args.run_dir)
    if args.recipe is None and layout.recipe_file.is_file():  # the recipe the run was made with
        args.recipe = str(layout.recipe_file)
    recipe = _recipe(args)
    check_out(args.run_dir, [named("--recipe", args.recipe)], stage=None, writes="report",
              flag="RUN_DIR", manifests=False)
    rep = report.run(recipe, layout)
    print(json.dumps({"report": str(layout.report_json), "n_eval": rep["n_eval"]}))
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from .view import serve
    serve(args.run_dir, args.port)
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from .config import builtin_recipe_path
    for name in BUILTIN_RECIPES:
        print(f"{name:18s} {builtin_recipe_path(name)}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    from . import device
    from .backends import engine_modules

    cap = device.detect()
    auto, note = device.resolve_dtype("auto", cap.device)  # the same for training (autocast) and evaluation
    backends = device.optional_backends(engine_modules())
    if args.json:
        print(json.dumps({**cap.to_dict(), "auto_dtype": {"train": auto, "eval": auto}, "auto_dtype_note": note,
                          "backends": backends}, indent=2))
        return 0
    isa = f", ONEDNN_MAX_CPU_ISA={cap.onednn_max_cpu_isa}" if cap.onednn_max_cpu_isa else ""
    gpus = "; ".join(f"{c['index']}: {c['name']} (compute {c['capability']}, "
                     f"bf16 {'yes' if c['bf16'] else 'no'}, {c['memory_gib']} GiB)" for c in cap.cuda)
    rows = [("torch", cap.torch_version),
            ("cpu", f"{cap.cpu_name or 'unknown'} ({cap.cpu_arch}), torch kernels {cap.cpu_capability}, "
                    f"bf16 flags: {', '.join(cap.cpu_bf16_flags) or 'none'}{isa}"),
            ("threads", f"{cap.threads} intra-op, {cap.interop_threads} inter-op; {cap.cpus} CPUs usable"),
            ("cuda", gpus or "none"),
            ("device", cap.device),
            ("native bf16", f"{'yes' if cap.native_bf16 else 'no'}: {cap.reason}"),
            ("dtype auto", f"train {auto}" + (" (autocast over fp32 weights)" if auto != "float32" else "")
             + f", eval {auto}"),
            ("backends", ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in backends.items()))]
    for name, value in rows:
        print(f"{name:12s} {value}")
    return 0


COMMANDS = {"run": _cmd_run, "compare": _cmd_compare, "loop": _cmd_loop, "problems": _cmd_problems, "generate": _cmd_generate, "verify": _cmd_verify,
            "curate": _cmd_curate, "pairs": _cmd_pairs, "train": _cmd_train, "evaluate": _cmd_evaluate,
            "report": _cmd_report, "view": _cmd_view, "recipes": _cmd_recipes, "env": _cmd_env,
            "launch-config": _cmd_launch_config, "export": _cmd_export}


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
    from .io import write_error

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


if __name__ == "__main__":
    sys.exit(main())
