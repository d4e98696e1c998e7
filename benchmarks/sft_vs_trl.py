"""Training throughput: our SFT (``train/sft.py``) vs TRL's ``SFTTrainer``, in one run.

Both see the same student, the same curated examples (the default recipe's program-teacher
chain_sum traces, built here in a few seconds), the same chat template, ``max_length``,
batch size, step count, learning rate and precision, and both train on completion tokens
only. Runs alternate (ours, TRL, ours, TRL, ...) so that a slow spell of the machine hits
both; each trainer's figure is its median over ``--repeats`` runs.

Throughput is training tokens (prompt + completion, no padding) per second of
``train_runtime`` as each trainer reports it.

    python benchmarks/sft_vs_trl.py                          # packaged SmolLM2-135M, bf16 autocast
    python benchmarks/sft_vs_trl.py --student PATH --examples 128 --batch-size 8 --dtype float32
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def curated_examples(n: int, work: Path):
    """The default recipe's data stages (program teacher, verifier, curation) on ``n`` problems."""
    from reasondistill import io, pipeline
    from reasondistill.config import load_recipe
    from reasondistill.layout import Layout
    from reasondistill.records import TrainExample

    recipe = load_recipe("default", [f"problems.n_train={n}", "problems.n_eval=10"])
    pipeline.run(recipe, work / "run", last="curate")
    return io.read_records(Layout(work / "run").path("curated"), TrainExample)


def run_ours(cfg, examples, out: Path) -> float:
    from reasondistill.train import sft

    _, _, result, _, _ = sft.train(cfg, examples, out)
    return float(result.metrics["train_runtime"])


def run_trl(cfg, examples, out: Path) -> float:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from reasondistill import models
    from reasondistill.train import base

    ref = models.resolve(cfg.student)
    tok = models.load_tokenizer(ref.path)
    device, use_bf16 = base.precision(cfg)
    model = models.load_model(ref.path, dtype="float32", device=device)
    model.train()
    args = base.training_args(cfg, out, use_bf16, device, cls=SFTConfig, max_length=cfg.max_length,
                              completion_only_loss=True, disable_tqdm=True)
    ds = Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in examples])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                         peft_config=base.lora_config(cfg))
    return float(trainer.train().metrics["train_runtime"])


def main(argv: list[str] | None = None) -> None:
    from reasondistill import models
    from reasondistill.config import TrainConfig
    from reasondistill.train import base

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--dtype", default="auto",
                    help="auto (the recipes' choice: bf16 autocast where native, else float32; honours ATEN_CPU_CAPABILITY), bfloat16 or float32")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    from reasondistill.device import resolve_dtype
    args.dtype = resolve_dtype(args.dtype, args.device)[0]  # the CPU class's own dtype, as a recipe's `auto`

    work = Path(tempfile.mkdtemp(prefix="sft-bench-"))
    examples = curated_examples(args.examples, work)
    steps = len(examples) // args.batch_size
    cfg = TrainConfig(student=args.student, max_steps=steps, batch_size=args.batch_size, max_length=args.max_length,
                      learning_rate=1e-5, warmup_ratio=0.0, logging_steps=steps, dtype=args.dtype,
                      device=args.device, lora=args.lora)
    tok = models.load_tokenizer(models.resolve(args.student).path)
    lengths = [len(base.encode_pair(tok, e.prompt, e.completion, path="bench", line=i)[1][:args.max_length])
               for i, e in enumerate(examples, 1)]
    tokens = sum(lengths[: steps * args.batch_size])

    ours, trl = [], []
    for r in range(args.repeats):
        ours.append(run_ours(cfg, examples, work / f"ours{r}"))
        trl.append(run_trl(cfg, examples, work / f"trl{r}"))
        print(f"repeat {r}: ours {ours[-1]:.2f} s, TRL {trl[-1]:.2f} s", flush=True)
    o, t = statistics.median(ours), statistics.median(trl)
    print(f"\nstudent={args.student} device={base.precision(cfg)[0]} dtype={args.dtype} lora={args.lora}")
    print(f"examples={len(examples)} batch={args.batch_size} max_length={args.max_length} steps={steps} "
          f"tokens/run={tokens} (mean {tokens / (steps * args.batch_size):.1f} per example)")
    print(f"ours (train/sft.py):  {o:8.2f} s  {tokens / o:8.1f} tokens/s")
    print(f"TRL SFTTrainer:       {t:8.2f} s  {tokens / t:8.1f} tokens/s")
    print(f"ratio ours / TRL:     {t / o:.2f}x")
    print_mfu(args.student, base.precision(cfg)[0], args.dtype, tokens, {"ours": o, "TRL": t})


def print_mfu(student: str, device: str, dtype: str, tokens: int, seconds: dict[str, float]) -> None:
    """Each trainer's model-FLOP utilisation against this machine's matmul ceiling (``mfu.py``)."""
    from mfu import matmul_ceiling, model_shapes, utilisation

    from reasondistill import models

    hidden, inter, vocab, n = model_shapes(models.resolve(student).path)
    ceiling = matmul_ceiling(hidden, inter, vocab, dtype=dtype, device=device)
    for name, s in seconds.items():
        print(f"{name}: {utilisation(n, tokens, s, ceiling)}")


if __name__ == "__main__":
    main()
