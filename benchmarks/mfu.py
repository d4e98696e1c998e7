"""Model-FLOP utilisation for the training benchmarks: achieved FLOP/s over a ceiling measured on
this machine, in the run's dtype, with the model's own matmul shapes.

Achieved: ``6 * N * tokens / seconds`` (forward + backward of every parameter once per token; the
usual estimate, which leaves out attention's quadratic term: small at our ~100-token sequences).
Ceiling: the best FLOP/s of the three matmul shapes a decoder layer and the LM head run,
``(rows x hidden) @ (hidden x intermediate)``, ``(rows x intermediate) @ (intermediate x hidden)``
and ``(rows x hidden) @ (hidden x vocab)``, timed after a warm-up, in the dtype the trainer
computes in (bf16 under autocast, else fp32), on the trainer's device. A trainer that reaches the
ceiling would spend its whole step in the fastest matmul the machine has for this model.

    python benchmarks/mfu.py                       # the packaged SmolLM2-135M shapes, bf16 and fp32
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Ceiling:
    flops_per_s: float
    how: str  # which shape gave it, timed how


def model_shapes(model_path: str) -> tuple[int, int, int, int]:
    """``(hidden, intermediate, vocab, n_params)`` of a causal LM folder (config only, no weights)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_path)
    hidden, inter, vocab = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    layers, heads, kv = cfg.num_hidden_layers, cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None)
    head_dim = hidden // heads
    attn = hidden * hidden * 2 + 2 * hidden * (kv or heads) * head_dim  # q, o, k, v
    n = layers * (attn + 3 * hidden * inter) + vocab * hidden  # tied embeddings counted once
    return hidden, inter, vocab, n


def matmul_ceiling(hidden: int, inter: int, vocab: int, *, rows: int = 800, dtype: str = "bfloat16",
                   device: str = "cpu", repeats: int = 5) -> Ceiling:
    """The best FLOP/s over the model's three matmul shapes (see the module docstring)."""
    import torch

    dt = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[dtype]
    best, how = 0.0, ""
    for k, m in ((hidden, inter), (inter, hidden), (hidden, vocab)):
        a = torch.randn(rows, k, dtype=dt, device=device)
        b = torch.randn(k, m, dtype=dt, device=device)
        a @ b  # warm-up (and kernel selection)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        rate = 2 * rows * k * m / min(times)
        if rate > best:
            best, how = rate, f"{rows}x{k} @ {k}x{m} {dtype} on {device}, best of {repeats}"
    return Ceiling(best, how)


def utilisation(n_params: int, tokens: int, seconds: float, ceiling: Ceiling) -> str:
    """One line: achieved FLOP/s, the ceiling and how it was measured, and their ratio."""
    achieved = 6 * n_params * tokens / seconds
    return (f"MFU {100 * achieved / ceiling.flops_per_s:.1f}%: {achieved / 1e9:.0f} GFLOP/s achieved "
            f"(6 x {n_params / 1e6:.0f}M params x {tokens} tokens / {seconds:.1f} s) vs a ceiling of "
            f"{ceiling.flops_per_s / 1e9:.0f} GFLOP/s ({ceiling.how})")


def main() -> None:
    from reasondistill import models

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    hidden, inter, vocab, n = model_shapes(models.resolve(args.model).path)
    print(f"{args.model}: hidden {hidden}, intermediate {inter}, vocab {vocab}, ~{n / 1e6:.0f}M parameters")
    for dtype in ("bfloat16", "float32"):
        c = matmul_ceiling(hidden, inter, vocab, dtype=dtype, device=args.device)
        print(f"{dtype}: {c.flops_per_s / 1e9:.0f} GFLOP/s ({c.how})")


if __name__ == "__main__":
    main()
