"""Training throughput: offline KD from cached top-k logprobs vs TRL's GKDTrainer with a live teacher.

Both trainers see the same student, examples, sequence length, batch size and steps. TRL's
GKD runs off-policy (``lmbda=0``: no student sampling, no ``seq_kd``), so it differs from
ours only in where the teacher distribution comes from: a teacher forward pass over the
full vocabulary every step, versus k cached ids plus a tail bucket read from disk. Both
use the generalised JSD with the same ``beta``.

A teacher is normally larger than its student, and only the live teacher pays for that.
``--teacher-shape smollm2-360m`` builds a teacher with SmolLM2-360M's architecture and the
student's tokenizer but random weights (no such model ships offline); its distributions are
meaningless, its cost per token is the real one, which is all a throughput figure needs.

Throughput is training tokens (prompt + completion, no padding) per second of
``train_runtime`` as each trainer reports it, the median of ``--repeats`` alternating runs.
Building the store (one teacher forward per example, normally a by-product of
generation) is timed separately.

    python benchmarks/kd_offline_vs_trl_gkd.py                       # packaged SmolLM2-135M for both
    python benchmarks/kd_offline_vs_trl_gkd.py --teacher-shape smollm2-360m   # a 360M-shaped teacher
    python benchmarks/kd_offline_vs_trl_gkd.py --student S --teacher T --examples 32 --max-length 512
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def make_examples(n: int, steps_per_problem: int):
    from reasondistill.records import TrainExample

    out = []
    for i in range(n):
        a, b = 3 + i, 7 + 2 * i
        lines, total = [], a
        for j in range(steps_per_problem):
            lines.append(f"Step {j + 1}: add {b} to {total} to get {total + b}.")
            total += b
        out.append(TrainExample(
            prompt=[{"role": "user", "content": f"Start at {a} and add {b} {steps_per_problem} times. "
                                                f"Show your work."}],
            completion=[{"role": "assistant", "content": "\n".join(lines) + f"\nAnswer: {total}"}],
            meta={"trace_id": f"bench{i}/teacher/s0"}))
    return out


# Architectures of SmolLM2 siblings that share the 135M student's tokenizer (their config.json values).
TEACHER_SHAPES = {
    "smollm2-360m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5),
}


def random_teacher(shape: str, tok, device: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=8192, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      rope_theta=100000.0, **TEACHER_SHAPES[shape])
    return LlamaForCausalLM(cfg).to(device).eval()


def build_store(teacher, tok, examples, k: int, path: Path, max_length: int) -> int:
    """Teacher-forced top-k logprobs at every completion token; returns the tokens per epoch."""
    import torch

    from reasondistill.logprobs import LogprobWriter

    n_tokens = 0
    with LogprobWriter(path, k, vocab_size=teacher.config.vocab_size) as w, torch.inference_mode():
        for ex in examples:
            prompt = tok(tok.apply_chat_template(ex.prompt, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"]
            full = tok(tok.apply_chat_template(ex.prompt + ex.completion, tokenize=False),
                       add_special_tokens=False)["input_ids"]
            if len(full) > max_length:
                raise SystemExit(f"an example has {len(full)} tokens > --max-length {max_length}; "
                                 f"raise it or lower --steps-per-problem")
            n_tokens += len(full)
            logits = teacher(torch.tensor([full], device=teacher.device)).logits[0].float()
            lp = torch.log_softmax(logits[len(prompt) - 1:len(full) - 1], dim=-1)
            top, ids = lp.topk(k, dim=-1)
            w.add(ex.meta["trace_id"], full[len(prompt):], ids.cpu(), top.cpu())
    return n_tokens


def main(argv: list[str] | None = None) -> None:
    from reasondistill import models

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default=None, help="model path (default: packaged smollm2-135m-instruct)")
    ap.add_argument("--teacher", default=None, help="model path (default: packaged smollm2-135m-instruct)")
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--steps-per-problem", type=int, default=6, help="completion length knob")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--beta", type=float, default=0.5, help="generalised JSD beta, both trainers")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto",
                    help="auto (the recipes' choice: bf16 autocast where native, else float32; honours ATEN_CPU_CAPABILITY), bfloat16 or float32, both trainers")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each trainer; medians are reported")
    ap.add_argument("--teacher-shape", choices=sorted(TEACHER_SHAPES), default=None,
                    help="a random-weight teacher of this architecture instead of --teacher (throughput only)")
    args = ap.parse_args(argv)
    from reasondistill.device import resolve_dtype
    args.dtype = resolve_dtype(args.dtype, args.device)[0]  # the CPU class's own dtype, as a recipe's `auto`

    default = models.resolve("smollm2-135m-instruct").path
    student = args.student or default
    teacher_path = args.teacher or default
    device = models.pick_device(args.device)
    examples = make_examples(args.examples, args.steps_per_problem)
    steps = args.epochs * (args.examples // args.batch_size)
    if steps < 1:
        raise SystemExit("--examples must be >= --batch-size")
    tok = models.load_tokenizer(student)
    work = Path(tempfile.mkdtemp(prefix="kd-bench-"))

    if args.teacher_shape:
        teacher = random_teacher(args.teacher_shape, tok, device)
        teacher_path = f"{args.teacher_shape} shape, random weights"
    else:
        teacher = models.load_model(teacher_path, dtype="auto", device=device)
    n_params = sum(p.numel() for p in teacher.parameters())
    t0 = time.perf_counter()
    tokens_per_epoch = build_store(teacher, tok, examples, args.top_k, work / "logprobs", args.max_length)
    store_s = time.perf_counter() - t0
    tokens = tokens_per_epoch * steps * args.batch_size // args.examples  # examples seen x mean length

    offline_runs, gkd_runs = [], []
    for r in range(args.repeats):  # alternating, so a slow spell of the machine hits both
        offline_runs.append(run_offline(args, student, examples, work, steps))
        gkd_runs.append(run_gkd(args, student, teacher, tok, examples, work, steps))
        print(f"repeat {r}: offline KD {offline_runs[-1]:.2f} s, TRL GKD {gkd_runs[-1]:.2f} s", flush=True)
    offline, gkd = statistics.median(offline_runs), statistics.median(gkd_runs)

    from reasondistill.logprobs import LogprobReader
    bpt = LogprobReader(work / "logprobs").bytes_per_token()
    print(f"\ndevice={device} dtype={args.dtype} student={student} teacher={teacher_path} "
          f"({n_params / 1e6:.0f}M parameters)")
    print(f"examples={args.examples} batch={args.batch_size} max_length={args.max_length} steps={steps} "
          f"tokens={tokens} top_k={args.top_k} beta={args.beta}")
    print(f"store build (teacher forward, once): {store_s:.2f} s, {bpt:.1f} bytes/token on disk")
    print(f"offline KD (ours):      {offline:8.2f} s  {tokens / offline:9.1f} tokens/s")
    print(f"TRL GKDTrainer (live):  {gkd:8.2f} s  {tokens / gkd:9.1f} tokens/s")
    print(f"ratio offline / GKD:    {gkd / offline:.2f}x")
    from sft_vs_trl import print_mfu
    print_mfu(student, device, args.dtype, tokens, {"offline KD": offline, "TRL GKD": gkd})


def run_offline(args, student: str, examples, work: Path, steps: int) -> float:
    from reasondistill.config import TrainConfig
    from reasondistill.logprobs import LogprobReader
    from reasondistill.train import kd

    cfg = TrainConfig(student=student, max_steps=steps, batch_size=args.batch_size, max_length=args.max_length,
                      learning_rate=1e-5, warmup_ratio=0.0, logging_steps=max(steps, 1), device=args.device,
                      dtype=args.dtype)
    kd_cfg = kd.KDConfig(loss="jsd", beta=args.beta, top_k=args.top_k)
    reader = LogprobReader(work / "logprobs")
    _, _, result, _, _ = kd.train(cfg, kd_cfg, examples, reader, work / "offline")
    return float(result.metrics["train_runtime"])


def run_gkd(args, student: str, teacher, tok, examples, work: Path, steps: int) -> float:
    from datasets import Dataset
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from reasondistill import models

    device = models.pick_device(args.device)
    model = models.load_model(student, dtype="float32", device=device)
    model.train()
    gkd_args = GKDConfig(output_dir=str(work / "gkd"), max_steps=steps, per_device_train_batch_size=args.batch_size,
                         learning_rate=1e-5, lr_scheduler_type="cosine", logging_steps=max(steps, 1),
                         save_strategy="no", report_to=[], max_length=args.max_length, lmbda=0.0,
                         beta=args.beta, seq_kd=False, bf16=args.dtype == "bfloat16",
                         use_cpu=device == "cpu", dataloader_num_workers=0, seed=0)
    ds = Dataset.from_list([{"messages": ex.prompt + ex.completion} for ex in examples])
    trainer = GKDTrainer(model=model, teacher_model=teacher, args=gkd_args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    return float(result.metrics["train_runtime"])


if __name__ == "__main__":
    main()
