"""The commands that run one stage on the files the user names: ``problems``, ``generate``,
``verify``, ``curate``, ``pairs``, ``train`` (and ``launch-config``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import Recipe, load_recipe
from ..errors import ConfigError
from ..guards import check_out, named, recipe_inputs
from ..layout import Layout
from ..records import StageManifest


def _recipe(args: argparse.Namespace, extra: list[str] | None = None) -> Recipe:
    """The recipe with the command's overrides, its names checked against the tables, and its
    ``run:NAME`` references to finished runs replaced by their checkpoints."""
    from ..pipeline import check_recipe, resolve_finished
    from .runs import _runs_root
    _runs_root(args)
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
    return resolve_finished(recipe)


def _stage_layout(out: Path, stage: str, **inputs: Path) -> Layout:
    """The layout of a stage run on its own: the user's input files, and ``--out`` as its folder."""
    return Layout(out).override(dirs={stage: out}, files=inputs)


def _cmd_problems(args: argparse.Namespace) -> int:
    from .. import problems
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
    m = StageManifest.of(problems.run(recipe, Layout(args.out).override(dirs={"problems": args.out})))
    print(json.dumps({"out": str(args.out), **{k: m.outputs[k] for k in ("n_train", "n_eval", "skipped")}}))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .. import generate
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--probe", args.probe),
                         named("--recipe", args.recipe), *recipe_inputs(recipe, None, sources=False)],
              stage="generate", writes="generate")
    m = StageManifest.of(generate.run(recipe, _stage_layout(args.out, "generate", train_problems=args.problems,
                                                            probe_samples=args.probe)))
    (calls, cached), out = m.spent(), m.outputs
    print(json.dumps({"out": str(args.out), "teacher_calls": calls, "cached_teacher_calls": cached,
                      "skipped": m.skipped, "n_traces": out["n_traces"], "n_errors": out.get("n_errors", 0),
                      **{k: out[k] for k in ("errors", "n_over_context") if out.get(k)}}))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from .. import verify
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--traces", args.traces),
                         named("--recipe", args.recipe)], stage="verify", writes="verify")
    m = StageManifest.of(verify.run(recipe, _stage_layout(args.out, "verify", train_problems=args.problems,
                                                          traces=args.traces)))
    print(json.dumps({"out": str(args.out), **{k: v for k, v in m.outputs.items() if k != "files"}}))
    return 0


def _cmd_curate(args: argparse.Namespace) -> int:
    from ..curate import run as curate_run
    recipe = _recipe(args)
    check_out(args.out, [named("--problems", args.problems), named("--traces", args.traces),
                         named("--verdicts", args.verdicts), named("--recipe", args.recipe),
                         *recipe_inputs(recipe, None, sources=False)], stage="curate", writes="curate")
    m = StageManifest.of(curate_run(recipe, _stage_layout(args.out, "curate", train_problems=args.problems,
                                                          traces=args.traces, verdicts=args.verdicts)))
    print(json.dumps({"out": str(args.out), **{k: v for k, v in m.outputs.items() if k != "files"}}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train import objective, run_objective
    from ..train.base import checkpoint_path
    from ..train.warm_start import resolve, sft_first
    recipe = _recipe(args, [f"train.method={args.method}"])
    traces = args.data if objective(args.method).data == "curated" else args.sft_data  # a warm start's SFT data
    if not args.dry_run:
        check_out(args.out, [named("--data", args.data), named("--logprobs", args.logprobs),
                             named("--sft-data", args.sft_data), named("--recipe", args.recipe),
                             *recipe_inputs(recipe, None, sources=False)],
                  stage="train", writes="train")
    if args.launch or args.dry_run:
        from ..train import launch
        n = args.num_processes or _cuda_count()
        if args.dry_run:
            from ..train.plan import plan
            print(plan(recipe.train, args.data, launch_name=args.launch, num_processes=n).format())
            if resolve(recipe.train) == "sft":
                what = f"SFT on {traces} first" if traces else "none (no curated traces: --sft-data)"
                print(f"  warm start:      {what} (train.warm_start)")
            if args.launch:
                print("  command:         " + " ".join(launch.command(args.launch, n, _train_argv(args),
                                                                     grad_accum=recipe.train.grad_accum, check=False)))
            return 0
        if launch.world_size() == 1:  # not yet launched: start the processes, each running this command
            launch.check(args.launch, recipe.train)
            return launch.run(args.launch, n, _train_argv(args), grad_accum=recipe.train.grad_accum)
    train_cfg = sft_first(recipe.train, traces, Layout(args.out).override(dirs={"train": args.out}).path("warm_start"))
    m = StageManifest.of(run_objective(train_cfg, args.data, args.out, logprobs=args.logprobs,
                                       verify_cfg=recipe.verify, prompt_cfg=recipe.generate.prompt))
    out = m.outputs
    if "rank" in m.raw["this_run"]:  # a launched process other than rank 0: rank 0 reports
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
    argv += ["--sft-data", str(args.sft_data)] if args.sft_data else []
    argv += ["--recipe", str(args.recipe)] if args.recipe else []
    return (["-v"] if args.verbose else []) + argv + list(args.overrides)


def _cmd_launch_config(args: argparse.Namespace) -> int:
    from ..train.launch import config_path
    print(config_path(args.name))
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from ..curate.pairs import build_pairs
    from ..curate.tailored_pairs import tailored_pairs
    out = Layout(args.out).override(dirs={"pairs": args.out}).pairs
    check_out(args.out, [named("--train", args.train), named("--negatives", args.negatives),
                         named("--student-traces", args.student_traces)], stage="pairs", writes="pairs")
    extra = tailored_pairs(args.train, args.student_traces) if args.student_traces else []
    counts = build_pairs(args.train, args.negatives, out,
                         max_pairs_per_problem=args.max_pairs_per_problem, seed=args.seed, extra=extra)
    print(json.dumps({"out": str(out), **counts}))
    return 0
