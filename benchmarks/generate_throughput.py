"""Generation throughput: our pipeline against the same engine driven by hand, in one run.

Two comparisons, both on reasoning-gym chain_sum problems under the teacher's CoT prompt,
greedy, the same ``max_new_tokens``:

1. **Pipeline overhead**: the whole ``generate`` stage (problems file in; requests built, sample
   cache written, traces written atomically, manifest) against calling the same backend's
   ``complete`` directly on the same requests in the same batches. The backend is built once
   and handed to the stage through a ``BackendPool``, so neither side pays for loading it.
   Backends: ``transformers`` (SmolLM2-135M-Instruct) and ``openai`` against the loopback fake
   server of the tests (a fixed latency per request). Ratio = direct time / pipeline time
   (>= 0.95 means our overhead is under 5%).
2. **Batching**: the ``transformers`` backend (left-padded batches) against a plain
   per-problem loop (``apply_chat_template`` + ``model.generate`` one problem at a time) on the
   same model object. Ratio = our tokens/s / loop tokens/s.

    python benchmarks/generate_throughput.py                  # 64 problems, 64 new tokens
    python benchmarks/generate_throughput.py --problems 32 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from benchmarks.openai_concurrency import cpu_flags  # noqa: E402
from reasondistill import generate, io  # noqa: E402
from reasondistill.backends import BackendPool  # noqa: E402
from reasondistill.backends.base import Request  # noqa: E402
from reasondistill.config import GenerateConfig, ProblemsConfig, PromptConfig, BackendConfig  # noqa: E402
from reasondistill.generate.run import sampling_params  # noqa: E402
from reasondistill.problems import reasoning_gym  # noqa: E402
from reasondistill.prompts import cot_prompt, teacher_prefix  # noqa: E402
from tests.helpers import recipe, stage_layout  # noqa: E402


def chain_sum(n: int) -> list:
    cfg = ProblemsConfig(source="reasoning_gym", task="chain_sum", n_train=n, n_eval=0, seed=0,
                         task_config={"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2})
    return reasoning_gym.load(cfg).train[:n]


def requests_for(problems: list, gen: GenerateConfig, backend_name: str) -> list[Request]:
    """The requests the generate stage builds (same prefix, prompt and sample index)."""
    prefix = teacher_prefix(gen.prompt, backend_name, problems)
    return [Request(p, tuple(prefix + [{"role": "user", "content": cot_prompt(p, gen.prompt)}]), i)
            for p in problems for i in range(gen.samples)]


def direct(backend, reqs: list[Request], gen: GenerateConfig) -> tuple[float, int]:
    """The backend alone: ``complete`` on the same batches, nothing written."""
    sampling = sampling_params(gen)
    started = time.perf_counter()
    tokens = 0
    for i in range(0, len(reqs), backend.batch_size):
        tokens += sum(c.completion_tokens for c in backend.complete(reqs[i:i + backend.batch_size], sampling))
    return time.perf_counter() - started, tokens


def pipeline(backend, teacher: BackendConfig, gen: GenerateConfig, problems_file: Path) -> tuple[float, int]:
    """The whole generate stage into a fresh folder with a fresh sample cache."""
    work = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    gen = GenerateConfig(**{**gen.__dict__, "cache_dir": str(work / "cache")})
    layout = stage_layout(work / "generate", "generate", train_problems=problems_file)
    pool = BackendPool()
    pool.add(teacher, backend)
    started = time.perf_counter()
    manifest = generate.run(recipe(teacher=teacher, generate=gen), layout, pool=pool)
    took = time.perf_counter() - started
    assert manifest["outputs"]["teacher_calls"] == sum(1 for _ in io.iter_jsonl(layout.traces)), manifest["outputs"]
    return took, manifest["outputs"]["completion_tokens"]


def per_problem_loop(backend, reqs: list[Request], gen: GenerateConfig) -> tuple[float, int]:
    """What a user writes by hand: one ``generate`` call per problem on the same model."""
    import torch

    tok, model = backend.tokenizer, backend.model
    started = time.perf_counter()
    tokens = 0
    with torch.inference_mode():
        for r in reqs:
            ids = tok.apply_chat_template(list(r.messages), add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True).to(model.device)
            out = model.generate(**ids, max_new_tokens=gen.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)
            new = out[0, ids["input_ids"].shape[1]:]
            tokens += int((new != (tok.pad_token_id or tok.eos_token_id)).sum())
    return time.perf_counter() - started, tokens


def median_pair(fa, fb, repeats: int) -> tuple[tuple[float, int], tuple[float, int]]:
    """Alternate the two sides ``repeats`` times; the median time of each (and its token count)."""
    a, b = [], []
    for _ in range(repeats):
        a.append(fa())
        b.append(fb())
    pick = lambda runs: sorted(runs)[len(runs) // 2]  # noqa: E731
    return pick(a), pick(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--loop-problems", type=int, default=16, help="problems for the per-problem loop comparison")
    ap.add_argument("--latency", type=float, default=0.05, help="fake server: seconds per request")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--openai-problems", type=int, default=256, help="problems for the openai overhead comparison")
    ap.add_argument("--only-openai", action="store_true", help="skip the transformers comparisons")
    args = ap.parse_args()

    import torch

    from reasondistill import device
    from reasondistill.backends.openai import OpenAIBackend
    from tests.fake_openai import FakeOpenAI

    dtype = device.resolve_dtype(args.dtype, "cpu")[0]
    print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores; torch {torch.__version__} threads "
          f"{torch.get_num_threads()}; python {platform.python_version()}; dtype {dtype}; "
          f"load average {os.getloadavg()[0]:.1f}")
    gen = GenerateConfig(samples=1, temperature=0.0, max_new_tokens=args.max_new_tokens, rationalize=False,
                         prompt=PromptConfig(few_shot=3))
    if not args.only_openai:
        transformers_comparisons(args, gen)
    problems = chain_sum(args.openai_problems)
    problems_file = Path(tempfile.mkdtemp(prefix="bench-problems-")) / "train.jsonl"
    io.write_jsonl(problems_file, problems)
    with FakeOpenAI(latency_s=args.latency) as fake:
        served = BackendConfig(backend="openai", model="fake-model", batch_size=8,
                               options={"base_url": fake.url})
        oa = OpenAIBackend("fake-model", base_url=fake.url, concurrency=8, batch_size=8, max_retries=0)
        reqs = requests_for(problems, gen, "openai")
        (t_pipe, _), (t_direct, _) = median_pair(lambda: pipeline(oa, served, gen, problems_file),
                                                 lambda: _direct_async(oa, reqs, gen), args.repeats)
        print(f"[overhead openai, fake server {args.latency * 1000:.0f} ms, concurrency 8, {len(problems)} problems] "
              f"pipeline {t_pipe:.2f} s, direct acomplete {t_direct:.2f} s: {t_direct / t_pipe:.3f}x")


def transformers_comparisons(args, gen: GenerateConfig) -> None:
    from reasondistill.backends.transformers import TransformersBackend

    problems = chain_sum(args.problems)
    problems_file = Path(tempfile.mkdtemp(prefix="bench-problems-")) / "train.jsonl"
    io.write_jsonl(problems_file, problems)

    teacher = BackendConfig(backend="transformers", model="smollm2-135m-instruct", dtype=args.dtype,
                            batch_size=args.batch_size)
    hf = TransformersBackend.from_config(teacher, None)
    print(f"transformers backend: SmolLM2-135M-Instruct, {hf.model.dtype}, batch {args.batch_size}, "
          f"{args.problems} problems, greedy, max_new_tokens {args.max_new_tokens}, median of {args.repeats}")
    reqs = requests_for(problems, gen, "transformers")
    direct(hf, reqs[: args.batch_size], gen)  # warm-up
    (t_pipe, tok_pipe), (t_direct, tok_direct) = median_pair(
        lambda: pipeline(hf, teacher, gen, problems_file), lambda: direct(hf, reqs, gen), args.repeats)
    print(f"[overhead transformers] pipeline {t_pipe:.2f} s ({tok_pipe} tokens), direct complete "
          f"{t_direct:.2f} s ({tok_direct} tokens): {t_direct / t_pipe:.3f}x")

    few = reqs[: args.loop_problems]
    (t_batched, tok_b), (t_loop, tok_l) = median_pair(lambda: direct(hf, few, gen),
                                                      lambda: per_problem_loop(hf, few, gen), args.repeats)
    print(f"[batching] transformers backend {tok_b / t_batched:.1f} tok/s ({tok_b} tokens in {t_batched:.2f} s), "
          f"per-problem generate loop {tok_l / t_loop:.1f} tok/s ({tok_l} tokens in {t_loop:.2f} s): "
          f"{(tok_b / t_batched) / (tok_l / t_loop):.2f}x")


def _direct_async(backend, reqs: list[Request], gen: GenerateConfig) -> tuple[float, int]:
    """The openai backend alone: its batches awaited with the same number in flight, nothing written."""
    import asyncio

    sampling = sampling_params(gen)

    async def go() -> int:
        gate = asyncio.Semaphore(backend.max_concurrency)

        async def one(batch):
            async with gate:
                return await backend.acomplete(batch, sampling)

        batches = [reqs[i:i + backend.batch_size] for i in range(0, len(reqs), backend.batch_size)]
        done = await asyncio.gather(*(one(b) for b in batches))
        return sum(c.completion_tokens for b in done for c in b)

    started = time.perf_counter()
    tokens = asyncio.run(go())
    return time.perf_counter() - started, tokens


if __name__ == "__main__":
    main()
