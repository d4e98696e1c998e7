"""The argument parser: one function per group of commands (runs, single stages, models and
run folders, information)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import BUILTIN_RECIPES
from ..pipeline import STAGE_NAMES

OVERRIDES_HELP = "recipe overrides as section.key=value, e.g. train.epochs=2 generate.samples=8"


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None,
                   help=f"recipe YAML or built-in name ({', '.join(BUILTIN_RECIPES)}); default: default")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    p.add_argument("--runs-root", type=Path, default=None,
                   help="where run:NAME model references find NAME's finished run folder (default: "
                        "$REASONDISTILL_RUNS, else runs); a single stage never starts one")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="reasondistill", description=(
        "Distil reasoning from a teacher (an LLM or a program) into a small student model. "
        "Stages: problems -> generate -> verify -> curate -> train -> evaluate -> report."))
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (_run_commands, _stage_commands, _model_commands, _info_commands):
        group(sub)
    return ap


def _run_command(sub: Any, name: str, recipe_help: str, out_help: str, **texts: str) -> argparse.ArgumentParser:
    """A command that makes a whole run folder from a recipe: RECIPE, --out, overrides, --runs-root."""
    p = sub.add_parser(name, **texts)
    p.add_argument("recipe", nargs="?", default=None, help=recipe_help)
    p.add_argument("--out", type=Path, default=None, help=f"{out_help} (default: runs/<recipe name>)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    p.add_argument("--runs-root", type=Path, default=None,
                   help="where run:NAME model references find (or make) NAME's run folder (default: "
                        "$REASONDISTILL_RUNS, else runs)")
    return p


def _run_commands(sub: Any) -> None:
    """``run``, ``compare``, ``loop``: whole run folders from a recipe."""
    p = _run_command(sub, "run", f"recipe YAML or built-in name ({', '.join(BUILTIN_RECIPES)}); default: default",
                     "run folder", help="run the whole pipeline from a recipe (default: built-in 'default')",
                     description="Run every stage into --out; finished stages are skipped on re-run.")
    p.add_argument("--from", dest="first", choices=STAGE_NAMES, default=None, metavar="STAGE",
                   help=f"re-run from this stage on (earlier ones must have finished): {', '.join(STAGE_NAMES)}")
    p.add_argument("--until", dest="last", choices=STAGE_NAMES, default=None, metavar="STAGE",
                   help="stop after this stage")
    _run_command(sub, "compare", "recipe YAML or built-in name; default: compare", "run folder",
                 help="train several objectives on the same data and step budget, compare them",
                 description="Runs the data stages once, then trains and evaluates every entry of "
                             "compare.entries; prints a table and writes DIR/compare.json.")
    p = _run_command(sub, "loop", "recipe YAML or built-in name; default: loop", "loop folder",
                     help="rounds: evaluate the student, pick problems, teacher traces, curate, retrain",
                     description="Runs loop.rounds rounds into DIR/round-<r>/ (resumable); prints the per-round "
                                 "table and writes DIR/loop.json and DIR/report.{json,md,html}.")
    p.add_argument("--rounds", type=int, default=None, help="number of rounds (loop.rounds)")


def _stage_commands(sub: Any) -> None:
    """One stage on the files the user names."""
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

    from ..train import DATA_KINDS, OBJECTIVES
    p = sub.add_parser("train", help="train the student with one objective",
                       description="Objectives and their --data: " + "; ".join(
                           f"{n}: {DATA_KINDS[o.data]}" for n, o in OBJECTIVES.items())
                       + ". Objective options: train.objective.KEY=VALUE.")
    p.add_argument("method", choices=list(OBJECTIVES), help="training objective")
    p.add_argument("--data", type=Path, required=True, help="the objective's input (see above)")
    p.add_argument("--logprobs", type=Path, default=None, help="teacher logprob store (kd): generate/logprobs")
    p.add_argument("--sft-data", type=Path, default=None,
                   help="curated train.jsonl to warm-start on (train.warm_start; on-policy objectives whose --data is "
                        "not curated traces: grpo, kdrl); an SFT pass into OUT/warm_start/ comes first")
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


def _model_commands(sub: Any) -> None:
    """Models and finished run folders: evaluate, export, report, view."""
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
    p.add_argument("--paired-seeds", action="store_true",
                   help="with --compare A1 .. vs B1 ..: seed i of A against seed i of B, where the design shares "
                        "their data order or parent checkpoint (the training noise is then the per-seed "
                        "differences'); the same number of seeds on both sides")
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


def _info_commands(sub: Any) -> None:
    """What is installed and built in."""
    sub.add_parser("recipes", help="list built-in recipes")

    p = sub.add_parser("env", help="show what this machine computes natively and the dtype auto picks",
                       description="torch, CPU capability, native bf16 (and why), threads, CUDA devices, the "
                                   "dtype 'auto' picks for training and evaluation, installed optional backends. "
                                   "Loads no model.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
