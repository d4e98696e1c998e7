"""Seconds per resumable checkpoint (weights, optimizer, scheduler, RNG, trainer state) for the
packaged SmolLM2-135M and a tiny 2-layer student: SFT for a few steps with a checkpoint after
every step, each ``Trainer._save_checkpoint`` call timed, and the checkpoint's size on disk.

    PYTHONPATH=src python benchmarks/checkpoint_save.py [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def tiny_student(root: Path, like: str) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(like)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(root, safe_serialization=True)
    tok.save_pretrained(root)
    return root


def measure(student: str, steps: int, work: Path) -> dict:
    from transformers import Trainer

    from reasondistill import io
    from reasondistill.config import TrainConfig
    from reasondistill.train import checkpoints, sft

    times, sizes = [], []
    real = Trainer._save_checkpoint

    def timed(self, model, trial):
        t = time.perf_counter()
        real(self, model, trial)
        times.append(time.perf_counter() - t)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        sizes.append(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()))

    data = work / "train.jsonl"
    io.write_jsonl(data, [{"prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
                           "completion": [{"role": "assistant", "content": f"Answer: {i + 2}"}]} for i in range(8)])
    cfg = TrainConfig(student=student, max_steps=steps + 1, batch_size=2, max_length=64, dtype="float32",
                      device="cpu", checkpoint_steps=1, logging_steps=1)
    Trainer._save_checkpoint = timed
    try:
        t = time.perf_counter()
        sft.run(cfg, None, data, work / "out")
        wall = time.perf_counter() - t
    finally:
        Trainer._save_checkpoint = real
    assert not (work / "out" / checkpoints.SCRATCH).exists()
    return {"student": Path(student).name, "saves": len(times), "s_per_save_median": round(statistics.median(times), 3),
            "s_per_save_max": round(max(times), 3), "checkpoint_MB": round(sizes[-1] / 2**20, 1),
            "run_wall_s": round(wall, 1), "steps": steps + 1}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    from reasondistill import models

    smollm2 = models.resolve("smollm2-135m-instruct").path
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tiny_student(tmp / "tiny", smollm2)
        for student in (str(tiny), smollm2):
            work = tmp / ("run-" + Path(student).name)
            work.mkdir()
            print(json.dumps(measure(student, args.steps, work)))


if __name__ == "__main__":
    main()
