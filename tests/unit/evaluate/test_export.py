"""``reasondistill export``: a self-contained HF folder that loads with plain transformers,
offline, without remote code, and computes what the source model computes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reasondistill import models
from reasondistill.errors import ConfigError
from reasondistill.evaluate.harness.export import EXPORT_NOTE, export, is_self_contained, source_model


def test_export_round_trip_from_a_run_folder(tiny_model_dir: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run / "train" / "model")  # where a run keeps its trained student
    models.record_task_prefixes(run / "train" / "model", {"rationale": "[rationale] "})
    (run / "train" / "model" / "generation_config.json").unlink(missing_ok=True)
    assert not is_self_contained(run / "train" / "model")

    out = tmp_path / "export"
    done = export(run, out)
    assert done.chat_template and is_self_contained(out)
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", EXPORT_NOTE,
            models.CHECKPOINT_NOTE} <= set(p.name for p in out.iterdir())
    assert not list(out.glob("*.bin")) and "auto_map" not in json.loads((out / "config.json").read_text())
    assert models.task_prefixes(out) == {"rationale": "[rationale] "}

    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    src_tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    msgs = [{"role": "user", "content": "What is 2 + 3?"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == \
        src_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    gen = GenerationConfig.from_pretrained(out, local_files_only=True)
    assert gen.do_sample is False and gen.eos_token_id == tok.eos_token_id and gen.pad_token_id is not None

    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, trust_remote_code=False)
    src = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    ids = torch.tensor([tok.encode("Janet has 3 ducks")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, src(ids).logits, atol=1e-5)


def test_export_refuses_what_it_cannot_make_self_contained(tiny_model_dir: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="neither a model folder"):
        source_model(tmp_path)  # an empty folder: no config.json, no train/model
    remote = tmp_path / "remote"
    shutil.copytree(tiny_model_dir, remote)
    cfg = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModelForCausalLM": "m.M"}}))
    with pytest.raises(ConfigError, match="auto_map"):
        export(remote, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    from reasondistill.cli import main

    assert main(["export", str(tiny_model_dir), "--out", str(tmp_path / "x")]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(tmp_path / "x")
    assert is_self_contained(tmp_path / "x")
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "y")]) == 2
