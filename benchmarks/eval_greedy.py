"""Greedy evaluation speed: plain batched ``model.generate`` against our evaluation path, in one run.

On the packaged SmolLM2-135M-Instruct and N reasoning-gym chain_sum problems (the recipes' task
config) under the student's evaluation prompt, greedy, the same ``max_new_tokens``:

(a) **plain**: ``model.generate`` on left-padded batches in input order, every row decoded to the
    limit or EOS (what evaluation did before);
(b) **ours**: the evaluation's draw (``backends.sampling.draw``): batches grouped by prompt length,
    each row stopped at the end of its ``Answer:`` line (``SamplingParams.stop_at_answer``);
(c) **llama.cpp**: the ``llamacpp`` backend on the packaged GGUF through the same draw (it ignores
    the answer stop), when ``llama_cpp`` is importable;
(d) with ``--static-cache``: (b) with ``generate(cache_implementation="static")``.

Each is timed once after a warm-up batch, as samples/s, with ratios to (a). Answers are
compared between (a) and (b): greedy, they must agree, and (b)'s text must be (a)'s up to the
end of its answer line.

    python benchmarks/eval_greedy.py                    # 128 problems, 256 new tokens, batch 32
    python benchmarks/eval_greedy.py --n 16 --static-cache
    python benchmarks/eval_greedy.py --n 300 --model runs/X/train/model   # a trained student
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from benchmarks.openai_concurrency import cpu_flags  # noqa: E402
from reasondistill.backends.base import Request, SamplingParams  # noqa: E402
from reasondistill.backends.sampling import draw  # noqa: E402
from reasondistill.config import ProblemsConfig  # noqa: E402
from reasondistill.grading.answers import answer_line_end, extract_answer  # noqa: E402
from reasondistill.problems import reasoning_gym  # noqa: E402
from reasondistill.prompts import student_messages  # noqa: E402

MODEL = "smollm2-135m-instruct"


def problems(n: int) -> list:
    cfg = ProblemsConfig(source="reasoning_gym", task="chain_sum", n_train=0, n_eval=n, seed=0,
                         task_config={"min_terms": 3, "max_terms": 4, "min_digits": 2, "max_digits": 2})
    return reasoning_gym.load(cfg).eval[:n]


def plain(backend, reqs: list[Request], max_new_tokens: int) -> list[str]:
    """(a): batches in input order, plain ``generate`` to the limit, nothing else."""
    import torch

    tok, model, out = backend.tokenizer, backend.model, []
    for s in range(0, len(reqs), backend.batch_size):
        texts = [backend.render(r.messages) for r in reqs[s:s + backend.batch_size]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            seq = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(seq[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def timed(fn) -> tuple[float, list[str]]:
    start = time.perf_counter()
    texts = fn()
    return time.perf_counter() - start, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=128, help="problems (samples per variant)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--static-cache", action="store_true", help="also time (b) with a static KV cache")
    ap.add_argument("--model", default=MODEL, help="a trained student's checkpoint folder (its answers end "
                    "with the answer line, where (b) stops early); default: the packaged, untrained model")
    args = ap.parse_args()

    import torch

    from reasondistill import device
    from reasondistill.backends.transformers import TransformersBackend
    from reasondistill.config import BackendConfig

    dtype = device.resolve_dtype(args.dtype, "cpu")[0]
    hf = TransformersBackend.from_config(BackendConfig(backend="transformers", model=args.model, dtype=args.dtype,
                                                       device="cpu", batch_size=args.batch_size), None)
    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores; torch {torch.__version__} threads "
          f"{torch.get_num_threads()}; python {platform.python_version()}; dtype {dtype} (weights "
          f"{hf.model.dtype}); load average {os.getloadavg()[0]:.1f}")
    reqs = [Request(p, tuple(student_messages(p)), 0) for p in problems(args.n)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens, stop_at_answer=True)
    print(f"{args.model}, {len(reqs)} chain_sum problems, greedy, max_new_tokens {args.max_new_tokens}, "
          f"batch {args.batch_size}, one timed run each after a warm-up batch")

    def ours(backend) -> list[str]:
        return [c.text for c in draw(backend, reqs, greedy, desc="ours")[0]]

    warm = reqs[: min(len(reqs), args.batch_size)]
    plain(hf, warm, 8)
    rows: dict[str, tuple[float, list[str]]] = {"(a) plain generate": timed(lambda: plain(hf, reqs, args.max_new_tokens)),
                                                "(b) ours": timed(lambda: ours(hf))}
    if args.static_cache:
        hf.cache_implementation = "static"
        hf.complete(warm, dataclasses.replace(greedy, max_new_tokens=8))
        rows["(d) ours, static KV cache"] = timed(lambda: ours(hf))
        hf.cache_implementation = None
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        print(f"(c) llama.cpp: skipped, llama_cpp is not importable ({e}; pip install llama-cpp-python)")
    else:
        from reasondistill.backends.llamacpp import LlamaCppBackend

        llama = LlamaCppBackend(MODEL, n_ctx=2048, batch_size=args.batch_size)
        llama.complete(reqs[:1], dataclasses.replace(greedy, max_new_tokens=8))
        rows["(c) llama.cpp backend"] = timed(lambda: ours(llama))
        llama.close()

    base = len(reqs) / rows["(a) plain generate"][0]
    for name, (wall, _) in rows.items():
        rate = len(reqs) / wall
        print(f"  {name:28s} {rate:7.2f} samples/s ({wall:.1f} s)   {rate / base:.2f}x (a)")
    a, b = rows["(a) plain generate"][1], rows["(b) ours"][1]
    differ = sum(extract_answer(x)[0] != extract_answer(y)[0] for x, y in zip(a, b))
    not_prefix = sum(y != (x[:end] if (end := answer_line_end(x)) is not None else x) for x, y in zip(a, b))
    stopped = sum(answer_line_end(x) is not None for x in a)
    print(f"answers that differ between (a) and (b): {differ}/{len(reqs)} (a later answer line in (a) counts); "
          f"(b) texts not (a)'s up to its answer line: {not_prefix}; (a) texts with a complete answer line: "
          f"{stopped}")
    for name in rows:
        if name.startswith("(d)"):
            same = sum(x == y for x, y in zip(b, rows[name][1]))
            print(f"  {name}: texts identical to (b): {same}/{len(reqs)}")


if __name__ == "__main__":
    main()
