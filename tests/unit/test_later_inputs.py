"""A stage that starts from one of our trainings (a compare entry's ``init``, an on-policy warm
start) hashes that checkpoint's weights; a run finished before they were hashed is reused only
while its start has not been rewritten since (``io.later_input``)."""

from __future__ import annotations

import json
import os
import time

from reasondistill import io
from reasondistill.train.base import started_from


def start_checkpoint(root, stage="train"):
    folder = root / "entries" / "sft" / "train"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.safetensors").write_bytes(b"weights v1")
    (folder / "manifest.json").write_text(json.dumps({"stage": stage}))
    return folder / "model"


def stage(out, config, inputs, calls):
    def body():
        calls.append(1)
        return {"files": []}
    return io.cached_stage(out, stage="train", config=config, inputs=inputs, body=body)


def strip_weights(out):
    """The manifest as a release before this one wrote it: without the start's weights."""
    m = json.loads((out / "manifest.json").read_text())
    m["inputs"] = {k: v for k, v in m["inputs"].items() if not k.endswith("model.safetensors")}
    (out / "manifest.json").write_text(json.dumps(m))
    return m


def test_only_our_finished_trainings_count_as_a_start(tmp_path):
    model = start_checkpoint(tmp_path / "a")
    assert started_from({"student": str(model)}) == [model / "model.safetensors"]
    assert started_from({"student": str(start_checkpoint(tmp_path / "b", stage="curate"))}) == []
    assert started_from({"student": "smollm2-135m-instruct"}) == []


def test_a_run_from_before_the_weights_were_hashed_is_reused_until_its_start_changes(tmp_path):
    model = start_checkpoint(tmp_path / "run")
    data = tmp_path / "run" / "curated.jsonl"
    data.write_text("{}\n")
    out = tmp_path / "run" / "entries" / "sft+redi" / "train"
    config = {"student": str(model), "lr": 1e-4}
    calls: list[int] = []
    stage(out, config, [data, *started_from(config)], calls)
    assert len(calls) == 1 and any(k.endswith("model.safetensors") for k in io.read_json(out / "manifest.json")["inputs"])

    strip_weights(out)  # finished before this release: the start is older than the manifest -> reused, migrated
    later = time.time() + 5
    os.utime(out / "manifest.json", (later, later))
    stage(out, config, [data, *started_from(config)], calls)
    assert len(calls) == 1
    assert any(k.endswith("model.safetensors") for k in io.read_json(out / "manifest.json")["inputs"])

    strip_weights(out)  # the start was retrained after that run finished: not reused stale
    (model / "model.safetensors").write_bytes(b"weights v2")
    os.utime(model / "model.safetensors", (later + 10, later + 10))
    stage(out, config, [data, *started_from(config)], calls)
    assert len(calls) == 2

    (model / "model.safetensors").write_bytes(b"weights v3")  # with the weights hashed: any change retrains
    stage(out, config, [data, *started_from(config)], calls)
    assert len(calls) == 3
