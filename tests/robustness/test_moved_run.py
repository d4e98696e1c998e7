"""A finished run folder that is moved, copied or addressed differently is reused, never redone
(issue 16): every stage is recognised by its content and by paths relative to its own folder.

One small finished run (dummy teacher, tiny student, every stage through ``reasondistill run``) is
copied elsewhere like ``cp -r`` does (new modification times) and run again from another working
directory, with ``--out`` absolute and relative: no teacher call (the sample cache is emptied
first, so a redone generation or evaluation would have to call it), no training, every stage
output byte for byte the same. The copy is validated against its own files, and manifests in the
older form (paths as typed from another working directory, model identities from modification
times) are recognised and rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from reasondistill import models
from reasondistill.io import sha256_json

from .conftest import snapshot

STAGES = ["problems", "generate", "verify", "curate", "train", "eval/teacher", "eval/student_before",
          "eval/student_after"]
REBUILT = ("report.json", "report.md", "report.html")  # the report is rebuilt at every run (timings)


def recipe(tiny_model_dir: Path, cache: Path) -> dict:
    return {"name": "moved",
            "problems": {"task": "chain_sum", "task_config": {"min_terms": 2, "max_terms": 2, "max_digits": 1},
                         "n_train": 8, "n_eval": 6},
            "teacher": {"backend": "dummy", "options": {"accuracy": 0.5}},
            "generate": {"samples": 2, "rationalize": True, "cache_dir": str(cache)},
            "train": {"student": str(tiny_model_dir), "max_steps": 2, "batch_size": 4, "dtype": "float32",
                      "device": "cpu", "max_length": 128},
            "eval": {"max_new_tokens": 8, "batch_size": 8, "dtype": "float32", "device": "cpu",
                     "models": ["teacher", "student_before", "student_after"]}}


@pytest.fixture(scope="module")
def finished(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished run, made with ``--out runs/default`` as typed from its own working directory."""
    from reasondistill.cli import main

    root = tmp_path_factory.mktemp("moved")
    home, cache = root / "home", root / "cache"
    home.mkdir()
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(tiny_model_dir, cache)), encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(home)
    try:
        assert main(["run", str(path), "--out", "runs/default"]) == 0
    finally:
        os.chdir(cwd)
    return {"run": home / "runs" / "default", "recipe": path, "cache": cache}


def copy_run(src: Path, dst: Path) -> Path:
    """``cp -r``: the bytes, not the modification times (a checkpoint's identity must not need them)."""
    shutil.copytree(src, dst, copy_function=shutil.copy)
    return dst


def stage_files(folder: Path) -> dict[str, bytes]:
    """Every file but the rebuilt report: stage outputs, checkpoint and manifests."""
    return {k: v for k, v in snapshot(folder).items() if k not in REBUILT}


def run_from(cli, cwd: Path, recipe_path: Path, out: Path | str, monkeypatch) -> tuple[float, dict]:
    """``reasondistill run`` from ``cwd``; (wall seconds, report.json)."""
    monkeypatch.chdir(cwd)
    started = time.time()
    rc, printed, err = cli("run", recipe_path, "--out", out)
    wall = time.time() - started
    assert rc == 0, err
    assert "teacher calls 0 (cached" in printed
    return wall, json.loads((cwd / out / "report.json").read_text())


def test_copied_run_run_from_another_folder_reuses_every_stage(cli, finished, tmp_path, monkeypatch, figures):
    original = snapshot(finished["run"])
    moved = copy_run(finished["run"], tmp_path / "elsewhere" / "moved")
    before = stage_files(moved)
    shutil.rmtree(finished["cache"])  # a redone generation or evaluation would have to call the teacher
    other = tmp_path / "another" / "cwd"
    other.mkdir(parents=True)
    for out in (moved, Path("..") / ".." / "elsewhere" / "moved"):  # --out absolute, then relative
        wall, report = run_from(cli, other, finished["recipe"], out, monkeypatch)
        assert report["teacher_calls"] == 0 and report["this_run"]["teacher_calls"] == 0
        after = stage_files(moved)
        assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
        changed = [k for k in before if before[k] != after[k]]
        assert not changed, changed  # no stage ran: not even a manifest was rewritten (training included)
        assert report["lineage"]["checkpoint"] == "train/model"
        assert wall < 30, wall  # measured ~2 s on 2 shared cores: no model loads, nothing trains
        figures.add(test="moved run reused", out="absolute" if Path(out).is_absolute() else "relative",
                    wall_s=round(wall, 2), teacher_calls=report["teacher_calls"])
    assert snapshot(finished["run"]) == original  # the run it was copied from: not one byte changed


@pytest.mark.parametrize("corrupt", ["problems/train.jsonl", "verify/verdicts.jsonl", "curate/train.jsonl"])
def test_copy_is_validated_against_its_own_files(cli, finished, tmp_path, monkeypatch, corrupt):
    original = snapshot(finished["run"])
    moved = copy_run(finished["run"], tmp_path / "copy")
    before = stage_files(moved)
    (moved / corrupt).write_text("{}\n", encoding="utf-8")  # the copy's output no longer matches its manifest
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("run", finished["recipe"], "--out", "copy")
    assert rc == 0, err
    after = stage_files(moved)
    stage = corrupt.split("/")[0]
    # that stage ran again (its manifest is new) and wrote the same bytes back, so the stages after it
    # found the same inputs and were reused (training included)
    assert after[f"{stage}/manifest.json"] != before[f"{stage}/manifest.json"]
    assert {k for k in before if before[k] != after[k]} == {f"{stage}/manifest.json"}
    assert snapshot(finished["run"]) == original


def test_copy_ignores_a_corrupted_original(cli, finished, tmp_path, monkeypatch):
    """A copy checks its own files: damage in the folder it was copied from changes nothing in it."""
    moved = copy_run(finished["run"], tmp_path / "copy")
    before = stage_files(moved)
    target = finished["run"] / "problems" / "train.jsonl"
    kept = target.read_bytes()
    try:
        target.write_text("{}\n", encoding="utf-8")
        monkeypatch.chdir(finished["run"].parent)  # even from where the original's paths were typed
        rc, _, err = cli("run", finished["recipe"], "--out", tmp_path / "copy")
        assert rc == 0, err
    finally:
        target.write_bytes(kept)
    assert stage_files(moved) == before


def _old_form(folder: Path, typed_root: str) -> None:
    """Rewrite ``folder``'s manifests as they were before names were relative: every input and
    output named as typed from another working directory (``typed_root/<stage>/<file>``), the
    checkpoint's path likewise, and the student's identity from sizes and modification times."""
    ckpt = folder / "train" / "model"
    weights = sorted(ckpt.glob("*.safetensors"))
    ref = models.resolve(str(ckpt))
    legacy = f"model@{models.earlier_digest(ckpt / 'config.json', weights)}"
    assert legacy != ref.identity
    for stage in STAGES:
        path = folder / stage / "manifest.json"
        m = json.loads(path.read_text())
        typed = f"{typed_root}/{stage}"
        m["inputs"] = {os.path.normpath(f"{typed}/{k}"): v for k, v in m["inputs"].items()}
        m["output_hashes"] = {f"{typed}/{k}": v for k, v in m["output_hashes"].items()}
        if "model_dir" in m["outputs"]:
            m["outputs"]["model_dir"] = f"{typed}/model"
        if m["config"].get("identity") == ref.identity:
            m["config"]["identity"] = legacy
        m["config_hash"] = sha256_json(m["config"])
        path.write_text(json.dumps(m, indent=2) + "\n")


def test_old_form_manifests_are_recognised_and_migrated(cli, finished, tmp_path, monkeypatch):
    moved = copy_run(finished["run"], tmp_path / "old")
    _old_form(moved, "some/other/cwd/runs/default")
    outputs = {k: v for k, v in stage_files(moved).items() if not k.endswith("manifest.json")}
    train_manifest = json.loads((moved / "train" / "manifest.json").read_text())
    shutil.rmtree(finished["cache"], ignore_errors=True)
    monkeypatch.chdir(tmp_path)
    rc, printed, err = cli("run", finished["recipe"], "--out", "old")
    assert rc == 0, err
    assert "teacher calls 0 (cached" in printed
    after = stage_files(moved)
    assert {k: v for k, v in after.items() if not k.endswith("manifest.json")} == outputs  # nothing redone
    migrated = json.loads((moved / "train" / "manifest.json").read_text())
    assert migrated["inputs"] == {"../curate/train.jsonl": train_manifest["inputs"][
        "some/other/cwd/runs/default/curate/train.jsonl"]}
    assert migrated["output_hashes"] == {"loss.jsonl": train_manifest["output_hashes"][
        "some/other/cwd/runs/default/train/loss.jsonl"]}
    assert migrated["started_at"] == train_manifest["started_at"]  # the same training, not a new one
    student = json.loads((moved / "eval" / "student_after" / "manifest.json").read_text())
    assert student["config"]["identity"] == models.resolve(str(moved / "train" / "model")).identity
    report = json.loads((moved / "report.json").read_text())
    assert report["teacher_calls"] == 0 and report["lineage"]["checkpoint"] == "train/model"
    # once migrated, a run rewrites nothing
    rc, _, err = cli("run", finished["recipe"], "--out", "old")
    assert rc == 0, err
    assert stage_files(moved) == after


def test_report_and_audit_of_a_moved_run_read_its_own_files(cli, finished, tmp_path, monkeypatch):
    moved = copy_run(finished["run"], tmp_path / "there" / "moved")
    other = tmp_path / "here"
    other.mkdir()
    monkeypatch.chdir(other)
    rc, _, err = cli("report", "../there/moved")
    assert rc == 0, err
    assert json.loads((moved / "report.json").read_text())["lineage"]["checkpoint"] == "train/model"
    # the problems the evaluation read: found through its manifest, in the copy (the path its
    # settings recorded was typed relative to another working directory)
    eval_dir = moved / "eval" / "student_after"
    started = json.loads((eval_dir / "manifest.json").read_text())["started_at"]
    rc, printed, err = cli("evaluate", "--audit", "../there/moved/eval/student_after")
    assert rc == 0, err
    assert json.loads(printed)["n"] == 6
    rc, printed, err = cli("run", finished["recipe"], "--out", "../there/moved")  # the audited evaluation counts
    assert rc == 0, err
    assert json.loads((eval_dir / "manifest.json").read_text())["started_at"] == started
    from reasondistill.view.index import Index
    index = Index.build("../there/moved")  # the trace browser reads the copy's own files
    assert index.rows and not index.notes, index.notes
    assert str(finished["run"]) not in json.dumps(index.facets())


@pytest.mark.slow  # two rounds of generate, train and evaluate: ~30 s on 2 shared cores
def test_moved_loop_retrains_no_round(cli, tiny_model_dir, tmp_path, monkeypatch):
    """``reasondistill loop``: round 2 starts from round 1's checkpoint, a path inside the loop
    folder; copied elsewhere, neither round trains or evaluates again."""
    cache = tmp_path / "cache"
    spec = {**recipe(tiny_model_dir, cache), "name": "movedloop",
            "eval": {"models": ["student_after"], "max_new_tokens": 6, "batch_size": 8, "dtype": "float32",
                     "device": "cpu"},
            "report": {"formats": ["md"]}, "loop": {"rounds": 2, "student_samples": 1, "retrain": "last"}}
    spec["problems"] = {**spec["problems"], "n_train": 4, "n_eval": 4}
    spec["train"] = {**spec["train"], "max_steps": 1}
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    rc, _, err = cli("loop", path, "--out", "loops/one")
    assert rc == 0, err
    loop_json = json.loads((home / "loops" / "one" / "loop.json").read_text())
    assert [r["checkpoint"] for r in loop_json["rounds"]] == ["round-1/train/model", "round-2/train/model"]
    moved = copy_run(home / "loops" / "one", tmp_path / "elsewhere" / "loop")
    before = {k: v for k, v in snapshot(moved).items() if not k.startswith("report.")}
    shutil.rmtree(cache)
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("loop", path, "--out", moved)
    assert rc == 0, err
    after = {k: v for k, v in snapshot(moved).items() if not k.startswith("report.")}
    changed = [k for k in before if before[k] != after.get(k)]
    assert not changed, changed  # no round trained, generated or evaluated again
