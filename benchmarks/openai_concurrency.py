"""The ``openai`` backend with requests in flight vs a plain sequential client (httpx2, one request
at a time), on the same loopback server and the same request bodies, in one run.

Servers: the fake OpenAI-compatible server of the tests with a fixed artificial latency per
request (what a remote API or a batching engine looks like from the client), and with
``--real`` also ``transformers serve`` with the packaged SmolLM2-135M-Instruct on CPU (greedy,
short answers; ``--cb`` starts it with continuous batching).

    python benchmarks/openai_concurrency.py                       # fake server, 50 ms per request
    python benchmarks/openai_concurrency.py --real --real-requests 12
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from reasondistill.backends.base import Request, SamplingParams  # noqa: E402
from reasondistill.backends.openai import OpenAIBackend  # noqa: E402
from reasondistill.backends.sampling import draw  # noqa: E402
from reasondistill.records import Problem  # noqa: E402


def cpu_flags() -> str:
    try:
        out = subprocess.run("lscpu | grep -o 'avx512_bf16\\|amx_bf16\\|avx2' | sort -u", shell=True,
                             capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return " ".join(out) or "(none of avx2, avx512_bf16, amx_bf16)"


def requests(n: int) -> list[Request]:
    probs = [Problem(f"p{i}", "bench", f"What is {i % 10} + {(3 * i) % 10}? Answer with the number.", "")
             for i in range(n)]
    return [Request(p, ({"role": "user", "content": p.prompt},), 0) for p in probs]


def sequential(backend: OpenAIBackend, reqs: list[Request], sampling: SamplingParams) -> tuple[float, int]:
    """The baseline: one httpx2 client, one request after another, the same bodies."""
    import httpx2

    ok = 0
    started = time.perf_counter()
    with httpx2.Client(timeout=300) as client:
        for r in reqs:
            resp = client.post(backend.url, json=backend.body(r, sampling))
            ok += resp.status_code == 200 and bool(resp.json().get("choices"))
    return time.perf_counter() - started, ok


def concurrent(backend: OpenAIBackend, reqs: list[Request], sampling: SamplingParams) -> tuple[float, int]:
    started = time.perf_counter()
    out, _ = draw(backend, reqs, sampling, None, desc="bench")
    return time.perf_counter() - started, sum(c.finish_reason != "error" for c in out)


def compare(label: str, base_url: str, model: str, n: int, concurrencies: list[int], batch: int,
            sampling: SamplingParams, repeats: int) -> list[dict]:
    rows = []
    probe = OpenAIBackend(model, base_url=base_url)
    concurrent(probe, requests(2), sampling)  # warm-up (first request loads lazily on some servers)
    reqs = requests(n)
    seq_times = []
    for _ in range(repeats):
        t, ok = sequential(probe, reqs, sampling)
        assert ok == n, f"sequential: {ok}/{n} answered"
        seq_times.append(t)
    seq = statistics.median(seq_times)
    print(f"[{label}] sequential httpx2: {n} requests in {seq:.2f} s ({n / seq:.1f} req/s)")
    for c in concurrencies:
        backend = OpenAIBackend(model, base_url=base_url, concurrency=c, max_retries=0, batch_size=batch)
        times = []
        for _ in range(repeats):
            t, ok = concurrent(backend, reqs, sampling)
            assert ok == n, f"concurrency {c}: {ok}/{n} answered"
            times.append(t)
        ours = statistics.median(times)
        print(f"[{label}] openai backend, concurrency {c:>2}: {ours:.2f} s ({n / ours:.1f} req/s), "
              f"{seq / ours:.2f}x sequential")
        rows.append({"server": label, "requests": n, "concurrency": c, "batch_size": batch,
                     "sequential_s": round(seq, 3), "ours_s": round(ours, 3), "ratio": round(seq / ours, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.05, help="fake server: seconds per request")
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--real", action="store_true", help="also against transformers serve (SmolLM2-135M, CPU)")
    ap.add_argument("--real-requests", type=int, default=12)
    ap.add_argument("--real-concurrency", default="4")
    ap.add_argument("--max-new-tokens", type=int, default=16, help="real server: tokens per answer")
    ap.add_argument("--cb", action="store_true", help="real server with --continuous-batching")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    import httpx2
    import torch

    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; "
          f"python {platform.python_version()}, httpx2 {httpx2.__version__}")
    print(f"settings: {args.requests} requests, fake latency {args.latency * 1000:.0f} ms, "
          f"batch_size {args.batch_size}, median of {args.repeats}")
    rows = []
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(latency_s=args.latency) as fake:
        rows += compare(f"fake {args.latency * 1000:.0f} ms", fake.url, "fake-model", args.requests,
                        [int(c) for c in args.concurrency.split(",")], args.batch_size,
                        SamplingParams(temperature=0.0, max_new_tokens=32), args.repeats)
    if args.real:
        from reasondistill import models
        from tests.transformers_serve import TransformersServe, serve_available

        if (why := serve_available()) is not None:
            sys.exit(why)
        model = models.resolve("smollm2-135m-instruct").path
        log = Path(tempfile.mkdtemp()) / "serve.log"
        extra = ["--continuous-batching"] if args.cb else []
        label = "transformers serve" + (" --continuous-batching" if args.cb else "")
        print(f"[{label}] SmolLM2-135M-Instruct float32 on CPU, {args.real_requests} requests, "
              f"greedy, max_new_tokens {args.max_new_tokens} (log: {log})")
        with TransformersServe(model, log, extra_args=extra) as srv:
            rows += compare(label, srv.base_url, str(model), args.real_requests,
                            [int(c) for c in args.real_concurrency.split(",")], args.batch_size,
                            SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens), 1)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_flags": cpu_flags(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
