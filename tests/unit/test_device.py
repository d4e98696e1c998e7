"""The dtype rule: bf16 only where the device computes it natively (reasondistill.device)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reasondistill import device, io, models
from reasondistill.config import TrainConfig
from reasondistill.errors import ConfigError
from reasondistill.train import base as common

SRC = Path(device.__file__).resolve().parents[1]
AVX2_ONLY = {"architecture": "x86_64", "cpu_name": "test cpu", "avx2": True, "fma3": True}
AVX512_BF16 = {**AVX2_ONLY, "avx512_f": True, "avx512_bf16": True}
AMX = {**AVX2_ONLY, "avx512_f": True, "amx_bf16": True, "amx_tile": True}


@pytest.fixture(autouse=True)
def fresh_detection(monkeypatch: pytest.MonkeyPatch):
    """Each test detects anew, warns anew, and sees no oneDNN cap unless it sets one."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(device, "_warned", set())
    device.detect.cache_clear()
    yield
    device.detect.cache_clear()


def fake_cpu(monkeypatch: pytest.MonkeyPatch, flags: dict, capability: str, onednn_bf16: bool | None = True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_cpu_flags", lambda: dict(flags))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(device, "_onednn_bf16", lambda: onednn_bf16)


def fake_gpu(monkeypatch: pytest.MonkeyPatch, name: str, capability: str):
    fake_cpu(monkeypatch, AVX2_ONLY, "AVX2")
    major = int(capability.split(".")[0])
    gpu = {"index": 0, "name": name, "capability": capability, "bf16": major >= 8, "memory_gib": 16.0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(device, "_cuda_devices", lambda: (gpu,))


# --- the CPU rule on given facts ------------------------------------------------------------


@pytest.mark.parametrize("flags, capability, isa, onednn, native, why", [
    (AVX2_ONLY, "AVX2", None, True, False, "none of avx512_bf16, amx_bf16"),
    (AVX512_BF16, "AVX512", None, True, True, "avx512_bf16"),
    (AMX, "AVX512", None, True, True, "amx_bf16"),
    # a bf16 machine held to AVX2 (ATEN_CPU_CAPABILITY=avx2) behaves as an AVX2-only one
    (AVX512_BF16, "AVX2", None, True, False, "torch kernels run at AVX2"),
    (AVX512_BF16, "AVX512", "AVX2", True, False, "ONEDNN_MAX_CPU_ISA=AVX2"),
    (AVX512_BF16, "AVX512", "avx512_core", True, False, "ONEDNN_MAX_CPU_ISA=avx512_core"),
    (AVX512_BF16, "AVX512", "AVX512_CORE_BF16", True, True, "avx512_bf16"),
    (AVX512_BF16, "AVX512", "ALL", True, True, "avx512_bf16"),
    (AVX512_BF16, "AVX512", None, False, False, "oneDNN reports no bf16"),
])
def test_cpu_rule(flags, capability, isa, onednn, native, why):
    got, reason = device.cpu_native_bf16(flags, arch="x86_64", cpu_capability=capability,
                                         onednn_max_isa=isa, onednn_bf16=onednn)
    assert got is native
    assert why in reason


def test_cpu_rule_arm_has_no_avx_gate():
    arm = {"architecture": "aarch64", "neon": True, "bf16": True}
    assert device.cpu_native_bf16(arm, arch="aarch64", cpu_capability="DEFAULT", onednn_max_isa=None,
                                  onednn_bf16=True)[0]
    assert not device.cpu_native_bf16({"neon": True}, arch="aarch64", cpu_capability="DEFAULT",
                                      onednn_max_isa=None, onednn_bf16=True)[0]


# --- auto on CPU ------------------------------------------------------------------------------


def test_auto_is_fp32_on_avx2_only_cpu(monkeypatch):
    fake_cpu(monkeypatch, AVX2_ONLY, "AVX2")
    name, note = device.resolve_dtype("auto")
    assert name == "float32" and "none of avx512_bf16" in note
    assert models.torch_dtype("auto") is torch.float32
    assert common.precision(TrainConfig(dtype="auto")) == ("cpu", False)


def test_auto_is_bf16_on_avx512_bf16_cpu(monkeypatch):
    fake_cpu(monkeypatch, AVX512_BF16, "AVX512")
    assert device.resolve_dtype("auto") == ("bfloat16", "auto on cpu: bfloat16, because the CPU has "
                                                        "avx512_bf16; torch kernels at AVX512")
    assert models.torch_dtype("auto", "cpu") is torch.bfloat16
    assert common.precision(TrainConfig(dtype="auto")) == ("cpu", True)


def test_onednn_cap_from_environment_turns_bf16_off(monkeypatch):
    fake_cpu(monkeypatch, AVX512_BF16, "AVX512")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    cap = device.detect("cpu")
    assert (cap.native_bf16, cap.onednn_max_cpu_isa) == (False, "AVX2")
    assert device.resolve_dtype("auto", "cpu")[0] == "float32"


def test_avx2_emulation_env_vars_in_a_fresh_process():
    """What a session on a bf16 machine uses to act as an AVX2 user: torch itself must honour it."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": str(SRC)}
    code = ("import json; from reasondistill import device; c = device.detect('cpu'); "
            "print(json.dumps([c.cpu_capability, c.native_bf16, device.resolve_dtype('auto', 'cpu')[0]]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    capability, native, auto = json.loads(out.stdout.strip().splitlines()[-1])
    assert capability in ("AVX2", "DEFAULT")  # DEFAULT on a CPU without AVX2
    assert (native, auto) == (False, "float32")


# --- auto on CUDA -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, capability, auto, bf16, fp16", [
    ("A100", "8.0", "bfloat16", True, False),
    ("V100", "7.0", "float16", False, True),
    ("P100", "6.0", "float32", False, False),
])
def test_auto_on_cuda(monkeypatch, tmp_path, name, capability, auto, bf16, fp16):
    fake_gpu(monkeypatch, name, capability)
    assert device.detect().device == "cuda"
    assert device.resolve_dtype("auto")[0] == auto
    assert models.torch_dtype("auto") is getattr(torch, auto)
    cfg = TrainConfig(dtype="auto")
    dev, use_bf16 = common.precision(cfg)
    kwargs = common.training_kwargs(cfg, tmp_path, use_bf16, dev)
    assert (dev, kwargs["bf16"], kwargs["fp16"]) == ("cuda", bf16, fp16)
    assert common.dtype_record({"dtype": "auto", "device": "auto"})["dtype"] == auto


def test_explicit_fp16_trains_fp32_off_cuda(monkeypatch, tmp_path):
    """fp16 mixed precision needs CUDA's loss scaler; elsewhere the trainer gets plain fp32."""
    fake_cpu(monkeypatch, AVX2_ONLY, "AVX2")
    cfg = TrainConfig(dtype="float16")
    dev, use_bf16 = common.precision(cfg)
    kwargs = common.training_kwargs(cfg, tmp_path, use_bf16, dev)
    assert (kwargs["bf16"], kwargs["fp16"]) == (False, False)
    assert common.dtype_record({"dtype": "float16", "device": "cpu"})["dtype"] == "float32"


# --- explicit bf16 on a CPU that emulates it ----------------------------------------------------


def test_explicit_bf16_without_native_support_runs_and_warns_once(monkeypatch, caplog):
    fake_cpu(monkeypatch, AVX512_BF16, "AVX2")
    with caplog.at_level(logging.WARNING, logger="reasondistill.device"):
        assert device.resolve_dtype("bf16", "cpu")[0] == "bfloat16"
        assert models.torch_dtype("bfloat16", "cpu") is torch.bfloat16
        assert common.precision(TrainConfig(dtype="bfloat16")) == ("cpu", True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "torch kernels run at AVX2" in msg and "159 s" in msg and "7 s" in msg


def test_explicit_bf16_with_native_support_is_quiet(monkeypatch, caplog):
    fake_cpu(monkeypatch, AMX, "AVX512")
    with caplog.at_level(logging.WARNING, logger="reasondistill.device"):
        assert device.resolve_dtype("bfloat16", "cpu") == ("bfloat16", "bfloat16 as requested on cpu")
    assert not caplog.records


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        device.resolve_dtype("int8", "cpu")


# --- what gets recorded -------------------------------------------------------------------------


def test_detect_on_this_machine_is_json_and_consistent():
    cap = device.detect("cpu")
    d = json.loads(json.dumps(cap.to_dict()))
    assert d["device"] == "cpu" and d["torch_version"] == torch.__version__
    assert d["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert d["threads"] == torch.get_num_threads() and d["cpus"] >= 1
    assert isinstance(d["native_bf16"], bool) and d["reason"]
    if d["native_bf16"]:
        assert d["cpu_bf16_flags"]


def test_manifest_records_device_only_once_torch_is_loaded(tmp_path, monkeypatch):
    m = io.write_manifest(tmp_path / "a", stage="x", config={}, inputs={}, outputs={}, started=0.0)
    assert m["device"]["torch_version"] == torch.__version__
    monkeypatch.delitem(sys.modules, "torch")  # a re-run whose stages never imported torch
    m = io.write_manifest(tmp_path / "b", stage="x", config={}, inputs={}, outputs={}, started=0.0)
    assert "device" not in m


def test_eval_manifest_dtype_is_the_models_weights_dtype():
    from types import SimpleNamespace

    from reasondistill.evaluate.runner import model_dtype
    assert model_dtype(SimpleNamespace(model=SimpleNamespace(dtype=torch.bfloat16))) == "bfloat16"
    assert model_dtype(SimpleNamespace()) is None  # a program teacher


def test_report_carries_device_and_dtypes(tmp_path):
    from reasondistill.report.build import build_report

    cap = {"device": "cpu", "native_bf16": False}
    io.write_json(tmp_path / "train" / "manifest.json",
                  {"stage": "train", "outputs": {"dtype": "float32"}, "device": cap})
    for model, dtype in (("teacher", None), ("student_after", "float32")):
        io.write_json(tmp_path / "eval" / model / "manifest.json",
                      {"stage": "evaluate", "outputs": {"dtype": dtype}, "device": {"device": "other"}})
        io.write_json(tmp_path / "eval" / model / "summary.json", {"accuracy": 0.5, "ci95": [0.4, 0.6], "n": 10})
    rep = build_report(tmp_path, task="t", teacher_calls=0, cached_teacher_calls=0, wall_seconds=1.0)
    assert rep["device"] == cap  # train's, not an eval's
    assert rep["dtype"] == {"train": "float32", "student_after": "float32"}
    assert rep["teacher"]["accuracy"] == 0.5 and rep["n_eval"] == 10  # the contract fields stay
