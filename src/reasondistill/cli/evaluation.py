"""The commands that read or score models and run folders: ``evaluate``, ``export``, ``report``,
``view``, and the informational ``recipes`` and ``env``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import BUILTIN_RECIPES
from ..errors import ConfigError
from ..guards import check_out, model_input, named, recipe_inputs
from ..layout import FILES, Layout
from ..records import StageManifest
from .stages import _recipe


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import evaluate
    from ..backends import BackendPool
    if args.compare:
        return _compare_evaluations(args)
    if args.audit:
        from ..evaluate.audit import audit_dir
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
        from ..backends import URL_BACKEND
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
        from ..evaluate import harness
        from ..problems.files import read_problem_set
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
            m = StageManifest.of(evaluate.evaluate_teacher(r, layout, pool))
    else:
        m = StageManifest.of(evaluate.evaluate_model(r, args.model, name, layout))
    out = m.outputs
    print(json.dumps({"model": name, "n": out["n"], "accuracy": out["accuracy"], "ci95": out["ci95"],
                      "n_errors": out.get("n_errors", 0),
                      **{k: out[k] for k in ("errors", "n_over_context") if out.get(k)}}))
    return 0


def _compare_evaluations(args: argparse.Namespace) -> int:
    """``evaluate --compare A B``: exit 2 with the differing settings named, unless allowed or forced."""
    from ..evaluate.compare_scores import compare, compare_seeds, format_result
    words = [str(p) for p in args.compare]
    if "vs" in words:
        cut = words.index("vs")
        sides = args.compare[:cut], args.compare[cut + 1:]
        if not sides[0] or not sides[1] or "vs" in words[cut + 1:]:
            raise ConfigError("--compare: give A1 [A2 ...] vs B1 [B2 ...], with folders on both sides of one 'vs'")
        result = compare_seeds(*sides, allow=args.allow_different, force=args.force, paired=args.paired_seeds)
    elif args.paired_seeds:
        raise ConfigError("--paired-seeds pairs the seeds of two sides: give A1 A2 .. vs B1 B2 ..")
    elif len(args.compare) == 2:
        result = compare(*args.compare, allow=args.allow_different, force=args.force)
    else:
        raise ConfigError(f"--compare takes two evaluations (A B), or several seeds per side separated by 'vs' "
                          f"(A1 A2 vs B1 B2); got {len(args.compare)} paths and no 'vs'")
    print(format_result(result))
    print(json.dumps(result))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..device import normalize
    from ..evaluate.harness import export
    from ..evaluate.harness.export import source_model
    try:  # before the model loads: a typo costs nothing
        normalize(args.dtype)
    except ConfigError as e:
        raise ConfigError(f"--dtype {args.dtype}: {e}") from None
    check_out(args.out, [named("model", model_input(source_model(args.model)))], stage=None, writes="export")
    print(json.dumps({"out": export(args.model, args.out, dtype=args.dtype).path}))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .. import report
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
    from ..view import serve
    serve(args.run_dir, args.port)
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from ..config import builtin_recipe_path
    for name in BUILTIN_RECIPES:
        print(f"{name:18s} {builtin_recipe_path(name)}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    from .. import device
    from ..backends import engine_modules

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
