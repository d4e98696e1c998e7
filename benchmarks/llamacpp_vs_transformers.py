"""Decode speed of the ``llamacpp`` teacher backend (the packaged Q4_1 GGUF, in process) vs the
``transformers`` backend (the same GGUF dequantized once to a safetensors checkpoint), on the
same problems and chat prompts, greedy, same ``max_new_tokens``, in one run.

Throughput is completion tokens per second of wall time over all prompts, the median of
``--repeats`` alternating runs after one warm-up prompt each. llama.cpp decodes one prompt at a
time; transformers is timed both one prompt at a time (the same work) and batched
(``--hf-batch``, what the generate stage does), with the same thread count for both.

    python benchmarks/llamacpp_vs_transformers.py
    python benchmarks/llamacpp_vs_transformers.py --problems 16 --max-new-tokens 128 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reasondistill.backends.base import Request, SamplingParams  # noqa: E402
from reasondistill.records import Problem  # noqa: E402

MODEL = "smollm2-135m-instruct"


def cpu_flags() -> str:
    """The CPU model and the SIMD flags that decide both engines' kernels."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("Flags")), [])
    keep = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c", "sse4_2"))
    return f"{name}; flags: {' '.join(keep) or 'none of avx/amx/fma/f16c'}"


def requests(n: int) -> list[Request]:
    out = []
    for i in range(n):
        p = Problem(f"p{i}", "bench", f"Tom has {12 + 7 * i} apples and buys {5 + 3 * i} more, then gives away "
                                      f"{4 + i}. How many apples does he have? Think step by step.", "")
        out.append(Request(p, ({"role": "user", "content": p.prompt},), 0))
    return out


def timed(backend, reqs: list[Request], sampling: SamplingParams, batch: int) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    outs = []
    for s in range(0, len(reqs), batch):
        outs += backend.complete(reqs[s:s + batch], sampling)
    wall = time.perf_counter() - start
    return wall, sum(c.completion_tokens for c in outs), [c.text for c in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="threads for both engines (default: half the cores, llama.cpp's own default)")
    ap.add_argument("--hf-batch", type=int, default=8, help="batch size of the batched transformers run")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    from reasondistill.backends.llamacpp import LlamaCppBackend
    from reasondistill.backends.transformers import TransformersBackend

    torch.set_num_threads(args.threads)
    sampling = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)
    reqs = requests(args.problems)
    llama = LlamaCppBackend(MODEL, n_ctx=2048, n_threads=args.threads)
    hf = TransformersBackend(MODEL, dtype="float32", device="cpu")
    dtype = str(next(hf.model.parameters()).dtype).replace("torch.", "")
    runs = {"llamacpp": (llama, 1), "transformers (1 prompt at a time)": (hf, 1),
            f"transformers (batch {args.hf_batch})": (hf, args.hf_batch)}
    for backend, _ in runs.values():  # warm-up: first-call allocations, kernel selection
        backend.complete(reqs[:1], SamplingParams(temperature=0.0, max_new_tokens=8))
    rates: dict[str, list[float]] = {k: [] for k in runs}
    texts: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, (backend, batch) in runs.items():
            wall, n_tok, out = timed(backend, reqs, sampling, batch)
            rates[name].append(n_tok / wall)
            texts[name], tokens[name] = out, n_tok
    load = os.getloadavg()
    print(f"CPU: {cpu_flags()}")
    print(f"threads: {args.threads} (llama.cpp n_threads, torch.set_num_threads); load average {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f}; llama-cpp-python {__import__('llama_cpp').__version__}, "
          f"torch {torch.__version__}")
    print(f"models: llama.cpp {llama.path.name} (Q4_1 weights), transformers dequantized {dtype}; "
          f"{args.problems} prompts, greedy, max_new_tokens={args.max_new_tokens}, median of {args.repeats}")
    base = statistics.median(rates["llamacpp"])
    for name, r in rates.items():
        med = statistics.median(r)
        ratio = "" if name == "llamacpp" else f"   llamacpp is {base / med:.2f}x"
        print(f"  {name:36s} {med:8.1f} tok/s  ({tokens[name]} tokens; runs {', '.join(f'{x:.1f}' for x in r)})"
              f"{ratio}")
    same = sum(a == b for a, b in zip(texts["llamacpp"], texts["transformers (1 prompt at a time)"]))
    print(f"greedy texts identical to transformers': {same}/{args.problems} (Q4_1 vs dequantized weights, "
          "different kernels: equal only while no near-tie is met)")
    llama.close()
    hf.close()


if __name__ == "__main__":
    main()
