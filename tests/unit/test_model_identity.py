"""A model folder's identity comes from its bytes: a checkpoint retrained to the same bytes (new
modification time), copied or moved keeps it, so its finished evaluation is reused (issue 16)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from reasondistill import io, models


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDISTILL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def checkpoint(folder, weights: bytes = b"\x00" * 64):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_same_bytes_keep_the_identity_whatever_the_mtime_or_place(tmp_path, cache):
    ckpt = checkpoint(tmp_path / "run" / "train" / "model")
    first = models.resolve(str(ckpt)).identity
    weights = ckpt / "model.safetensors"
    st = weights.stat()
    weights.write_bytes(weights.read_bytes())  # retrained to the same bytes, later
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert weights.stat().st_mtime_ns != st.st_mtime_ns
    assert models.resolve(str(ckpt)).identity == first
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(ckpt, copy, copy_function=shutil.copy)
    assert models.resolve(str(copy)).identity == first
    weights.write_bytes(b"\x01" + b"\x00" * 63)  # different weights, same size: a new identity
    assert models.resolve(str(ckpt)).identity != first


def test_digest_cache_is_keyed_by_mtime_but_never_decides_the_identity(tmp_path, cache):
    ckpt = checkpoint(tmp_path / "model")
    weights = ckpt / "model.safetensors"
    assert models.file_sha256(weights) == io.sha256_file(weights)
    assert (cache / "weight_hashes.json").is_file()  # read once: the next resolve does not re-read it
    st = weights.stat()
    weights.write_bytes(b"\x02" * 64)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # new bytes at a new mtime: a new digest
    assert models.file_sha256(weights) == io.sha256_file(weights)


def test_a_stage_keyed_on_the_earlier_identity_is_recognised_and_rewritten(tmp_path, cache):
    """Evaluations finished before identities came from content named the checkpoint by its sizes
    and modification times; they are still recognised, and their manifest takes the new identity."""
    ckpt = checkpoint(tmp_path / "model")
    ref = models.resolve(str(ckpt))
    earlier = f"model@{models.earlier_digest(ckpt / 'config.json', [ckpt / 'model.safetensors'])}"
    out = tmp_path / "eval"
    out.mkdir()
    (out / "samples.jsonl").write_text("{}\n")
    old_config = {"model": "student_after", "identity": earlier}
    io.write_manifest(out, stage="evaluate", config=old_config, inputs={}, outputs={"files": ["samples.jsonl"]},
                      started=0)
    config = {"model": "student_after", "identity": ref.identity}
    done = io.completed_manifest(out, config, {})
    assert done is not None and done["config"] == config
    assert json.loads((out / "manifest.json").read_text())["config_hash"] == io.sha256_json(config)
    assert io.completed_manifest(out, {"model": "student_after", "identity": "other@0"}, {}) is None
