"""Training throughput: our DPO (``reasondistill train``, method ``dpo``) vs TRL's ``DPOTrainer``, in one run.

Both see the same student and reference (a frozen copy of the student), the same preference
pairs, ``max_length``, batch size, step count, learning rate, ``beta``, sigmoid loss and precision.
The pairs are what the pipeline builds for a preference objective: the reproduce-redi recipe's
program teacher writes four chain_sum rationales per problem, a quarter of them with one slipped
step, and ``curate/pairs.py`` pairs a correct trace (chosen) with a wrong one (rejected).

Ours runs as the train stage runs it: ``train/dpo.py``'s ``run`` (through ``train/preference.py``:
loading, ``train.packing``, ``train.compile``, the trainer it builds, the save), with the default
``TrainConfig`` apart from the shared settings above and no mid-run checkpoints (TRL saves none
either). TRL's is the plain call a user would write: ``DPOTrainer(model, args=DPOConfig(...),
train_dataset=..., processing_class=tokenizer)``, which copies the student as its reference.
Runs alternate (ours, TRL, ...) so that a slow spell of the machine hits both; each figure is the
median over ``--repeats``.

Ours scores every pair once with the starting student before training (the reference) and then
runs no reference model; TRL scores its frozen copy inside every step. Throughput is the tokens of
both rows of each pair (prompt + chosen, prompt + rejected, cut at ``max_length``, no padding) per
second of ``train_runtime`` as each trainer reports it, plus our reference pass. MFU counts
the policy's forward and backward (6 N tokens), not the reference model's forward (2 N more).

    python benchmarks/dpo_vs_trl.py                          # packaged SmolLM2-135M, --dtype auto
    python benchmarks/dpo_vs_trl.py --steps 8 --batch-size 8 --max-length 320 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))


def preference_pairs(n: int, work: Path):
    """At least ``n`` pairs from the reproduce-redi recipe's data stages (program teacher with slips,
    verifier, curation, pairs), on as many chain_sum problems as it takes."""
    from reasondistill import io, pipeline
    from reasondistill.config import load_recipe
    from reasondistill.layout import Layout
    from reasondistill.records import PreferenceExample

    problems = max(8, n)  # about one pair per problem: 2 per problem with a slip among its 4 samples
    for attempt in range(4):
        recipe = load_recipe("reproduce-redi", [f"problems.n_train={problems}", "problems.n_eval=10",
                                                "train.method=dpo"])
        run = work / f"pairs{attempt}"
        pipeline.run(recipe, run, last="pairs")
        pairs = io.read_records(Layout(run).pairs, PreferenceExample)
        if len(pairs) >= n:
            return pairs[:n]
        problems *= 2
    raise SystemExit(f"only {len(pairs)} pairs from {problems // 2} problems; fewer --steps or --batch-size")


def pair_tokens(tok, pairs, max_length: int) -> int:
    """Tokens of both rows of every pair as the trainers see them (cut at ``max_length``, no padding)."""
    from reasondistill.train import preference

    return sum(min(max_length, len(f["prompt_ids"]) + len(f[key]))
               for f in preference.tokenize_pairs(tok, pairs, max_length) for key in ("chosen_ids", "rejected_ids"))


def run_ours(cfg, beta: float, pairs_path: Path, out: Path) -> float:
    """``train/dpo.py``'s ``run``; its ``train_runtime``, read off ``base.fit``'s result, plus the
    seconds its reference pass took before training."""
    from reasondistill.train import base, dpo

    seen = {}
    fit = base.fit

    def timed_fit(trainer, cfg_, out_dir):
        model, result, history = fit(trainer, cfg_, out_dir)
        # our reference pass (every pair scored once, before training) counts: TRL's runs inside its steps
        seen["s"] = float(result.metrics["train_runtime"]) + float(getattr(trainer, "reference_seconds", 0.0))
        return model, result, history

    base.fit = timed_fit
    try:
        dpo.run(cfg, dpo.DPOObjectiveConfig(beta=beta), pairs_path, out)
    finally:
        base.fit = fit
    return seen["s"]


def run_trl(cfg, beta: float, pairs, out: Path) -> float:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from reasondistill import models

    ref = models.resolve(cfg.student)
    tok = models.load_tokenizer(ref.path)
    device = models.pick_device(cfg.device)
    model = models.load_model(ref.path, dtype="float32", device=device)
    args = DPOConfig(output_dir=str(out), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                     learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=0,
                     logging_steps=cfg.max_steps, save_strategy="no", report_to=[], max_length=cfg.max_length,
                     beta=beta, loss_type=["sigmoid"], bf16=cfg.dtype == "bfloat16", use_cpu=device == "cpu",
                     dataloader_num_workers=0, seed=cfg.seed, disable_tqdm=True)
    ds = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    return float(trainer.train().metrics["train_runtime"])


def main(argv: list[str] | None = None) -> None:
    import torch
    from packing import cpu_flags
    from sft_vs_trl import print_mfu

    from reasondistill import io, models
    from reasondistill.config import TrainConfig
    from reasondistill.device import resolve_dtype

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step (2 rows each)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--learning-rate", type=float, default=5e-6)
    ap.add_argument("--dtype", default="auto",
                    help="auto (the recipes' choice: bf16 autocast where native, else float32; honours "
                         "ATEN_CPU_CAPABILITY), bfloat16 or float32")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    dtype = resolve_dtype(args.dtype, args.device)[0]  # the CPU class's own dtype, as a recipe's `auto`

    work = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    pairs = preference_pairs(args.steps * args.batch_size, work)
    pairs_path = work / "pairs.jsonl"
    io.write_jsonl(pairs_path, pairs)
    cfg = dataclasses.replace(TrainConfig(), student=args.student, method="dpo", max_steps=args.steps,
                              batch_size=args.batch_size, max_length=args.max_length,
                              learning_rate=args.learning_rate, warmup_ratio=0.0, logging_steps=args.steps,
                              dtype=dtype, device=args.device, checkpoint_every=0.0)
    tok = models.load_tokenizer(models.resolve(args.student).path)
    tokens = pair_tokens(tok, pairs, args.max_length)

    ours, trl = [], []
    for r in range(args.repeats):
        ours.append(run_ours(cfg, args.beta, pairs_path, work / f"ours{r}"))
        trl.append(run_trl(cfg, args.beta, pairs, work / f"trl{r}"))
        print(f"repeat {r}: ours {ours[-1]:.2f} s, TRL {trl[-1]:.2f} s", flush=True)
    o, t = statistics.median(ours), statistics.median(trl)
    device = models.pick_device(args.device)
    print(f"\nstudent={args.student} device={device} dtype={dtype} cpu_flags=[{cpu_flags()}] "
          f"threads={torch.get_num_threads()} torch={torch.__version__} load_average={os.getloadavg()[0]:.1f}")
    print(f"pairs={len(pairs)} batch={args.batch_size} max_length={args.max_length} steps={args.steps} "
          f"beta={args.beta} tokens/run={tokens} (mean {tokens / len(pairs) / 2:.1f} per row)")
    print(f"ours (train/dpo.py):  {o:8.2f} s  {tokens / o:8.1f} tokens/s")
    print(f"TRL DPOTrainer:       {t:8.2f} s  {tokens / t:8.1f} tokens/s")
    print(f"ratio ours / TRL:     {t / o:.2f}x")
    print_mfu(args.student, device, dtype, tokens, {"ours": o, "TRL": t})


if __name__ == "__main__":
    main()
