"""Training on many processes: the packaged accelerate configs, the launcher command, the
``--dry-run`` plan, rank-0-only writes, and (slow) DDP over two CPU processes (gloo) giving
the loss curve of one process with the same effective batch."""

from __future__ import annotations

import json
import math

import pytest

from reasondistill import io
from reasondistill.cli import main
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.records import TrainExample
from reasondistill.train import base, launch
from reasondistill.train.plan import memory, plan


def write_examples(path, n: int):
    # different lengths, so a rank that saw the wrong rows would move the loss
    io.write_jsonl(path, [TrainExample(prompt=[{"role": "user", "content": f"{i} + {3 * i} ="}],
                                       completion=[{"role": "assistant",
                                                    "content": f"{i} + {3 * i} = {4 * i}" + " so" * i
                                                    + f"\nAnswer: {4 * i}"}]) for i in range(n)])
    return path


# ---- configs and command ----

@pytest.mark.parametrize("name, kind, stage", [("ddp", "MULTI_GPU", None), ("fsdp", "FSDP", None),
                                               ("zero2", "DEEPSPEED", 2), ("zero3", "DEEPSPEED", 3)])
def test_packaged_configs_parse_as_accelerate_configs(name, kind, stage):
    cfg = launch.read_config(name)
    assert cfg["distributed_type"] == kind and cfg["mixed_precision"] == "no"
    if stage:
        assert cfg["deepspeed_config"]["zero_stage"] == stage
    if name == "fsdp":  # rank 0 must be able to save a whole checkpoint
        assert cfg["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_launch_config_prints_the_packaged_path(capsys):
    assert main(["launch-config", "zero2"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith("deepspeed_zero2.yaml") and launch.config_path("zero2").read_text().startswith("#")


def test_command_runs_this_cli_under_accelerate():
    cmd = launch.command("ddp", 3, ["train", "sft", "--data", "d.jsonl"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "3" and cmd[cmd.index("--config_file") + 1].endswith("ddp.yaml")
    assert cmd[-6:] == ["-m", "reasondistill", "train", "sft", "--data", "d.jsonl"]
    zero = launch.command("zero3", 2, ["train", "sft"], grad_accum=4, check=False)
    assert zero[zero.index("--gradient_accumulation_steps") + 1] == "4"
    with pytest.raises(ConfigError, match="num-processes"):
        launch.command("ddp", 0, [])


def test_deepspeed_launch_without_deepspeed_is_a_config_error():
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed")
    with pytest.raises(ConfigError, match="pip install deepspeed"):
        launch.command("zero2", 2, ["train", "sft"])


# ---- the plan ----

def test_memory_divides_the_sharded_parts():
    full = memory(1000, 1000, (), 4)
    assert full == {"weights": 4000, "grads": 4000, "optimizer": 8000, "total": 16000}
    assert memory(1000, 1000, ("grads", "optimizer"), 4) == {"weights": 4000, "grads": 1000, "optimizer": 2000,
                                                             "total": 7000}
    assert memory(1000, 10, ("params", "grads", "optimizer"), 4)["total"] == 1000 + 10 + 20


def test_plan_counts_params_batches_and_steps_without_loading_weights(tmp_path, tiny_model_dir, monkeypatch):
    from safetensors import safe_open

    from reasondistill import models

    def no_load(*a, **k):
        raise AssertionError("the plan loaded weights")

    monkeypatch.setattr(models, "load_model", no_load)
    data = write_examples(tmp_path / "train.jsonl", 16)
    cfg = TrainConfig(student=str(tiny_model_dir), batch_size=2, grad_accum=2, epochs=3, dtype="float32",
                      device="cpu")
    p = plan(cfg, data, launch_name="zero3", num_processes=2)
    with safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as f:  # tied embeddings stored once
        stored = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    assert p.params == p.trainable == stored
    assert (p.effective_batch, p.steps_per_epoch, p.optimizer_steps) == (8, 2, 6)  # 16 rows / (2 x 2) = 4 batches
    assert p.memory_bytes["total"] == math.ceil(16 * stored / 2)
    lora = plan(TrainConfig(student=str(tiny_model_dir), lora=True, lora_r=4, device="cpu"), data)
    assert lora.num_processes == 1 and 0 < lora.trainable < lora.params // 10
    assert lora.memory_bytes["grads"] == 4 * lora.trainable


def test_dry_run_prints_the_plan_and_the_command(tmp_path, tiny_model_dir, capsys):
    data = write_examples(tmp_path / "train.jsonl", 10)
    rc = main(["train", "sft", "--data", str(data), "--out", str(tmp_path / "out"), "--launch", "ddp",
               "--num-processes", "2", "--dry-run", f"train.student={tiny_model_dir}", "train.batch_size=2",
               "train.grad_accum=3", "train.max_steps=7", "train.dtype=float32", "train.device=cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and not (tmp_path / "out").exists()
    assert "ddp, 2 process(es) on cpu" in out and "float32 autocast" in out
    assert "2 per device x 3 grad-accum x 2 processes = 12 effective" in out
    assert "optimizer steps: 7" in out and "sharded:         nothing" in out
    assert "accelerate.commands.launch --config_file" in out and "--launch" not in out.split("command:")[1]


# ---- rank-0-only writes ----

def test_ranks_other_than_0_train_but_write_nothing(tmp_path, monkeypatch):
    class Result:
        global_step, training_loss = 3, 1.5

    calls = []

    def train():
        calls.append(1)
        return None, None, Result(), [{"loss": 1.5}], {}

    data = write_examples(tmp_path / "train.jsonl", 2)
    monkeypatch.setenv("RANK", "1")
    m = base.cached_run(tmp_path / "out", "sft", {"lr": 1}, [data], train)
    assert calls and m["this_run"] == {"skipped": False, "rank": 1} and m["outputs"]["steps"] == 3
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---- slow: two CPU processes over gloo ----

def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_gives_the_single_process_loss_curve(tmp_path, tiny_model_dir):
    data = write_examples(tmp_path / "train.jsonl", 4)  # one step sees every row: order cannot matter
    common = [f"train.student={tiny_model_dir}", "train.max_steps=6", "train.logging_steps=1",
              "train.learning_rate=3e-3", "train.dtype=float32", "train.device=cpu", "train.warmup_ratio=0"]
    assert main(["train", "sft", "--data", str(data), "--out", str(tmp_path / "one"), *common,
                 "train.batch_size=4"]) == 0
    assert main(["train", "sft", "--data", str(data), "--out", str(tmp_path / "two"), "--launch", "ddp",
                 "--num-processes", "2", *common, "train.batch_size=2"]) == 0
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 6 and one[-1] < one[0]
    assert two == pytest.approx(one, rel=1e-4)
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["outputs"]["steps"] == 6 and (tmp_path / "two" / "model" / "model.safetensors").exists()
    assert not list((tmp_path / "two").glob("*.tmp")) and not (tmp_path / "two" / "trainer").exists()


def test_sharded_launch_on_cpu_is_refused_before_any_process_starts(tmp_path, tiny_model_dir, capsys):
    data = write_examples(tmp_path / "train.jsonl", 2)
    rc = main(["train", "sft", "--data", str(data), "--out", str(tmp_path / "out"), "--launch", "fsdp",
               "--num-processes", "2", f"train.student={tiny_model_dir}", "train.device=cpu"])
    assert rc == 2 and "use --launch ddp on CPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


from tests.unit.train.test_kd_offline import K, teacher_data  # noqa: E402,F401  (the tiny teacher's store)


@pytest.mark.slow
def test_offline_kd_on_two_cpu_processes_matches_one_process_with_grad_accum(tmp_path, tiny_model_dir, teacher_data):
    """KD averages per-batch means (as over gradient accumulation): two processes of batch 2 are
    one process of batch 2 with 2 accumulation steps."""
    _, store, examples = teacher_data
    data = tmp_path / "train.jsonl"
    io.write_jsonl(data, examples[:4])  # one step sees every row
    common = ["--logprobs", str(store), f"train.student={tiny_model_dir}", "train.max_steps=4",
              "train.logging_steps=1", "train.learning_rate=3e-3", "train.dtype=float32", "train.device=cpu",
              "train.warmup_ratio=0", "train.batch_size=2", f"train.objective.top_k={K}"]
    assert main(["train", "kd", "--data", str(data), "--out", str(tmp_path / "one"), *common,
                 "train.grad_accum=2"]) == 0
    assert main(["train", "kd", "--data", str(data), "--out", str(tmp_path / "two"), "--launch", "ddp",
                 "--num-processes", "2", *common]) == 0
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == 4 and two == pytest.approx(one, rel=1e-4)
