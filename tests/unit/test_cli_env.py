"""``reasondistill env``: what was detected and what ``dtype: auto`` will pick, without loading a model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reasondistill import device
from reasondistill.cli import main

SRC = Path(device.__file__).resolve().parents[1]


@pytest.fixture()
def avx2_cpu(monkeypatch: pytest.MonkeyPatch):
    """An AVX2-only CPU with no GPU, whatever this machine is."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_cpu_flags", lambda: {"architecture": "x86_64", "cpu_name": "Test CPU",
                                                        "avx2": True})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    device.detect.cache_clear()
    yield
    device.detect.cache_clear()


@pytest.fixture()
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An installed 'vllm' whose import fails: env must find it without importing it."""
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("raise RuntimeError('env imported vllm')\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_env_text(avx2_cpu, fake_vllm, capsys):
    assert main(["env"]) == 0
    rows = {line[:12].strip(): line[13:] for line in capsys.readouterr().out.splitlines()}
    assert rows["torch"] == torch.__version__
    assert rows["cpu"] == "Test CPU (x86_64), torch kernels AVX2, bf16 flags: none"
    assert rows["threads"].startswith(f"{torch.get_num_threads()} intra-op")
    assert rows["cuda"] == "none" and rows["device"] == "cpu"
    assert rows["native bf16"].startswith("no: the CPU has none of avx512_bf16, amx_bf16")
    assert rows["dtype auto"] == "train float32, eval float32"
    assert "vllm yes" in rows["backends"] and "llamacpp " in rows["backends"] and "deepspeed" in rows["backends"]


def test_env_json(avx2_cpu, fake_vllm, capsys):
    assert main(["env", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["device"], d["cpu_capability"], d["native_bf16"]) == ("cpu", "AVX2", False)
    assert d["auto_dtype"] == {"train": "float32", "eval": "float32"}
    assert d["torch_version"] == torch.__version__ and d["cuda"] == []
    assert set(d["backends"]) == {"vllm", "llamacpp", "openai", "ray", "deepspeed"}
    assert d["backends"]["vllm"] is True
    assert "vllm" not in sys.modules


def test_env_shows_gpus_and_bf16_choice(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(device, "_cuda_devices", lambda: (
        {"index": 0, "name": "Fake A100", "capability": "8.0", "bf16": True, "memory_gib": 80.0},))
    device.detect.cache_clear()
    try:
        assert main(["env"]) == 0
    finally:
        device.detect.cache_clear()
    out = capsys.readouterr().out
    assert "0: Fake A100 (compute 8.0, bf16 yes, 80.0 GiB)" in out
    assert "train bfloat16 (autocast over fp32 weights), eval bfloat16" in out


def test_env_takes_no_overrides():
    with pytest.raises(SystemExit):
        main(["env", "train.dtype=float32"])


def test_env_loads_no_model_library():
    code = ("import sys; from reasondistill.cli import main; main(['env']); "
            "print(sorted(m for m in ('transformers', 'trl', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
