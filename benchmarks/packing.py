"""Training step throughput: padded vs packed batches, the model's own LM head vs the lean
(chunked) head, and optionally torch.compile, on the same student and batches, interleaved.

Each variant runs the SFT loss exactly as ``train/sft.py`` computes it (completion positions
only, token-mean cross-entropy) forward and backward on batches of the default recipe's
program-teacher chain_sum traces (built here in seconds), under the dtype training would use.
The optimizer step is left out: it is the same for every variant. Variants alternate within
each repeat so that a slow spell of the machine hits them all; each figure is the median.

    python benchmarks/packing.py                         # packaged SmolLM2-135M, bf16 autocast where native
    python benchmarks/packing.py --dtype float32 --repeats 5 --compile
    python benchmarks/packing.py --head-only   # the LM head + cross-entropy alone
    python benchmarks/packing.py --mixed   # completions of 1x to 10x the length: padding to save, rows to share

On the default recipe's traces (86-112 tokens) no two examples fit in the longest one's row, so
packed batches are the padded ones; ``--mixed`` shows what packing saves on varied lengths.

Throughput is trained-on tokens (prompt + completion, no padding) per second of forward + backward.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return platform.processor() or "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none"


def batches(args, tok):
    from sft_vs_trl import curated_examples

    from reasondistill.train import base, sft

    work = Path(tempfile.mkdtemp(prefix="packing-bench-"))
    examples = curated_examples(args.examples, work)
    features, _ = sft.tokenize(examples, tok, args.max_length)
    if args.mixed:  # completions repeated 1, 4, 7, 10 times: lengths vary (~2-3x) as real reasoning traces do
        import torch

        for i, f in enumerate(features):
            n = int((f["labels"] == base.IGNORE).sum())
            times = 1 + 3 * (i % 4)
            f["input_ids"] = torch.cat([f["input_ids"][:n], *[f["input_ids"][n:]] * times])[:args.max_length]
            f["labels"] = torch.cat([f["labels"][:n], *[f["labels"][n:]] * times])[:args.max_length]
    collate = sft.Collator(tok.pad_token_id)
    out = [collate(features[i:i + args.batch_size]) for i in range(0, len(features), args.batch_size)]
    return [b for b in out if len(b["input_ids"]) == args.batch_size]


def step(model, batch, device, dtype):
    import torch

    from reasondistill.train import base, lean_head

    b = {k: v.to(device) for k, v in batch.items()}
    targets = base.next_token_targets(b["labels"])
    keep = targets != base.IGNORE
    with torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype), enabled=dtype != "float32"):
        rows, head = lean_head.completion_hidden(model, b["input_ids"], b["attention_mask"], keep)
        loss = -lean_head.token_logprobs(rows, head, targets[keep]).sum()  # as train/sft.py
    (loss / keep.sum()).backward()
    model.zero_grad(set_to_none=True)


def head_only(args, model, data, device, dtype) -> None:
    """The LM head and cross-entropy alone, forward + backward, on the trained positions' hidden
    states of each batch: the model's own head (all positions' logits at once) vs the lean head's
    vocabulary slices and position chunks (forced, whatever ``FULL_LOGITS_UP_TO`` says)."""
    import torch
    import torch.nn.functional as F

    from reasondistill.train import base, lean_head

    head = model.get_output_embeddings()
    cases = []
    for b in data:
        targets = base.next_token_targets(b["labels"])
        wanted = targets[targets != base.IGNORE].to(device)
        cases.append((torch.randn(len(wanted), head.weight.shape[1], device=device, requires_grad=True), wanted))

    def own(h, t):
        return F.cross_entropy(head(h).float(), t, reduction="sum")

    def slices(h, t):  # what train/sft.py and REDI run above FULL_LOGITS_UP_TO
        return -lean_head._TokenLogProbs.apply(h, head.weight, head.bias, t, lean_head.vocab_cols(len(t))).sum()

    def chunks(h, t):  # what KD and GKD run above FULL_LOGITS_UP_TO
        return lean_head.chunked(h, head, lambda z, at: F.cross_entropy(z.float(), t[at], reduction="sum"))

    variants = (("model's head", own), ("vocab slices", slices), ("position chunks", chunks))
    seconds: dict[str, list[float]] = {name: [] for name, _ in variants}
    for r in range(args.repeats + 1):
        for name, fn in variants:
            t0 = time.perf_counter()
            for h, t in cases:
                with torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype), enabled=dtype != "float32"):
                    loss = fn(h, t)
                loss.backward()
                model.zero_grad(set_to_none=True)
            if r:  # the first round warms up
                seconds[name].append(time.perf_counter() - t0)
    n = sum(len(t) for _, t in cases)
    for name, s in seconds.items():
        print(f"head only, {name:16s} {statistics.median(s):7.3f} s for {n} positions ({len(cases)} batches)")


def main(argv: list[str] | None = None) -> None:
    import torch

    from reasondistill import models
    from reasondistill.train import base, lean_head, packing

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--examples", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)  # the default recipe's train.max_length
    ap.add_argument("--dtype", default="auto", help="auto (training's choice), bfloat16 or float32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time train.compile (packed, lean head)")
    ap.add_argument("--mixed", action="store_true", help="repeat completions 1-10x: varied lengths")
    ap.add_argument("--head-only", action="store_true", help="time the LM head + cross-entropy alone")
    args = ap.parse_args(argv)

    ref = models.resolve(args.student)
    tok = models.load_tokenizer(ref.path)
    device = models.pick_device(args.device)
    dtype = base.mixed_dtype(args.dtype, device)[0]
    data = batches(args, tok)
    tokens = sum(int(b["attention_mask"].sum()) for b in data)
    padded_tokens = sum(b["attention_mask"].numel() for b in data)

    if args.head_only:
        print(f"device={device} dtype={dtype} cpu_flags=[{cpu_flags()}] threads={torch.get_num_threads()} "
              f"load_average={os.getloadavg()[0]:.1f}")
        head_only(args, models.load_model(ref.path, dtype="float32", device=device), data, device, dtype)
        return
    own_head = lean_head.plain_head
    lean_head.FULL_LOGITS_UP_TO = 0  # "lean head": chunked however few the positions (training builds <= 64 MiB whole)
    variants = {}  # name -> (model, lean head?)
    for name, pack, lean in (("padded, model's head", False, False), ("padded, lean head", False, True),
                             ("packed, model's head", True, False), ("packed, lean head", True, True)):
        model = models.load_model(ref.path, dtype="float32", device=device).train()
        if pack and not packing.enable(model, "true"):
            print(f"{name}: the model cannot pack; skipped")
            continue
        variants[name] = (model, lean)
    if args.compile:
        model = models.load_model(ref.path, dtype="float32", device=device).train()
        packing.enable(model, "true")
        t0 = time.perf_counter()
        base.compile_layers(model)
        lean_head.plain_head = own_head
        step(model, data[0], device, dtype)  # the compilation (forward and backward)
        print(f"compile: {time.perf_counter() - t0:.1f} s for the first step (inductor, dynamic shapes)")
        variants["packed, lean head, compiled"] = (model, True)

    def timed(model, lean):
        lean_head.plain_head = own_head if lean else (lambda m: None)
        t0 = time.perf_counter()
        for b in data:
            step(model, b, device, dtype)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for model, lean in variants.values():  # warm-up
        timed(model, lean)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    peak: dict[str, float] = {}
    for r in range(args.repeats):
        for name, (model, lean) in variants.items():
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            seconds[name].append(timed(model, lean))
            if device.startswith("cuda"):
                peak[name] = torch.cuda.max_memory_allocated() / 2**20
        print(f"repeat {r}: " + ", ".join(f"{n} {s[-1]:.2f} s" for n, s in seconds.items()), flush=True)
    lean_head.plain_head = own_head

    print(f"\nstudent={args.student} device={device} dtype={dtype} cpu_flags=[{cpu_flags()}] "
          f"threads={torch.get_num_threads()} torch={torch.__version__} load_average={os.getloadavg()[0]:.1f}")
    print(f"batches={len(data)} x {args.batch_size}, {tokens} tokens ({tokens / len(data) / args.batch_size:.1f} per "
          f"example), padded layout {padded_tokens} tokens ({100 * (1 - tokens / padded_tokens):.1f}% padding)")
    plans = [packing.plan(b["attention_mask"]) for b in data]
    rows = sum(len(b["input_ids"]) if p is None else len(p["position_ids"]) for b, p in zip(data, plans))
    cells = sum(b["attention_mask"].numel() if p is None else p["position_ids"].numel() for b, p in zip(data, plans))
    print(f"packed: {rows} rows of {len(data) * args.batch_size}, {100 * (1 - tokens / cells):.1f}% padding left")
    base_s = statistics.median(seconds[next(iter(seconds))])
    for name, s in seconds.items():
        m = statistics.median(s)
        mem = f"  peak {peak[name]:.0f} MiB" if name in peak else ""
        print(f"{name:30s} {m:7.2f} s  {tokens / m:8.1f} tokens/s  {base_s / m:5.2f}x{mem}")
    vocab = len(tok)
    trained = max(int((b["labels"] != base.IGNORE).sum()) for b in data)
    print(f"logits of the largest batch's {trained} trained positions: {trained * vocab * 4 / 2**20:.0f} MiB in fp32 "
          f"with the model's head; {lean_head.CHUNK_BYTES / 2**20:.0f} MiB per chunk with the lean head")


if __name__ == "__main__":
    main()
