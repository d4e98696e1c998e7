"""Stage manifests name files relative to their stage folder and are recognised by content, so a
run folder keeps every finished stage when it is moved, copied or addressed from elsewhere."""

from __future__ import annotations

import errno
import json
import shutil

from reasondistill import io


def stage(run, config, *, upstream="problems/train.jsonl"):
    """A finished ``curate``-like stage of run folder ``run`` reading ``upstream``."""
    (run / "recipe.yaml").parent.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yaml").write_text("name: x\n")
    (run / upstream).parent.mkdir(parents=True, exist_ok=True)
    (run / upstream).write_text('{"id": "p1"}\n')
    out = run / "curate"

    def body():
        io.write_jsonl(out / "train.jsonl", [{"a": 1}])
        return {"files": ["train.jsonl"]}
    return io.cached_stage(out, stage="curate", config=config, inputs=[run / upstream], body=body)


def test_names_are_relative_to_the_stage_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = stage(tmp_path / "runs" / "a", {"k": 1})
    assert list(m["inputs"]) == ["../problems/train.jsonl"] and list(m["output_hashes"]) == ["train.jsonl"]
    again = io.cached_stage("runs/a/curate", stage="curate", config={"k": 1}, inputs=["runs/a/problems/train.jsonl"],
                            body=lambda: 1 / 0)  # addressed relatively: recognised, nothing runs
    assert again["this_run"] == {"skipped": True}


def test_a_copy_is_checked_against_its_own_outputs(tmp_path):
    stage(tmp_path / "a", {"k": 1})
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy)
    (tmp_path / "a" / "curate" / "train.jsonl").write_text("damaged in the original\n")
    inputs = io.hash_inputs([tmp_path / "b" / "problems" / "train.jsonl"], tmp_path / "b" / "curate")
    assert io.completed_manifest(tmp_path / "b" / "curate", {"k": 1}, inputs) is not None
    (tmp_path / "b" / "curate" / "train.jsonl").write_text("damaged in the copy\n")
    assert io.completed_manifest(tmp_path / "b" / "curate", {"k": 1}, inputs) is None


def test_inputs_match_by_content_and_order(tmp_path):
    recorded = {"old/cwd/runs/a/problems/train.jsonl": "h1", "/abs/runs/a/generate/traces.jsonl": "h2"}
    assert io.same_files(recorded, {"../problems/train.jsonl": "h1", "../generate/traces.jsonl": "h2"})
    assert not io.same_files(recorded, {"../problems/train.jsonl": "h1", "../generate/traces.jsonl": "h3"})
    assert not io.same_files(recorded, {"../generate/traces.jsonl": "h2", "../problems/train.jsonl": "h1"})
    assert not io.same_files(recorded, {"../problems/train.jsonl": "h1"})


def test_a_path_inside_the_run_folder_in_a_config_survives_a_move(tmp_path, monkeypatch):
    """A loop round's or compare entry's student is an earlier checkpoint of the same run folder."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "a"
    (run / "round-1" / "train" / "model").mkdir(parents=True)
    config = {"student": "runs/a/round-1/train/model", "task": "chain_sum"}
    stage(run, config)
    shutil.copytree(run, tmp_path / "moved", copy_function=shutil.copy)
    moved = {"student": str(tmp_path / "moved" / "round-1" / "train" / "model"), "task": "chain_sum"}
    inputs = io.hash_inputs([tmp_path / "moved" / "problems" / "train.jsonl"], tmp_path / "moved" / "curate")
    assert io.completed_manifest(tmp_path / "moved" / "curate", moved, inputs) is not None
    # a student outside the run folder is a different student
    (tmp_path / "other" / "model").mkdir(parents=True)
    assert io.completed_manifest(tmp_path / "moved" / "curate", {**moved, "student": "other/model"}, inputs) is None


def test_an_old_manifest_is_migrated_once_and_a_read_only_one_still_counts(tmp_path, monkeypatch):
    run = tmp_path / "a"
    stage(run, {"k": 1})
    path = run / "curate" / "manifest.json"
    m = json.loads(path.read_text())
    m["inputs"] = {"x/a/problems/train.jsonl": m["inputs"]["../problems/train.jsonl"]}
    m["output_hashes"] = {"x/a/curate/train.jsonl": m["output_hashes"]["train.jsonl"]}
    path.write_text(json.dumps(m))
    inputs = io.hash_inputs([run / "problems" / "train.jsonl"], run / "curate")
    with monkeypatch.context() as ro:  # a read-only run folder: recognised, just not rewritten
        ro.setattr(io.tempfile, "mkstemp", lambda **kw: (_ for _ in ()).throw(PermissionError(errno.EACCES, "ro")))
        assert io.completed_manifest(run / "curate", {"k": 1}, inputs) is not None
    assert json.loads(path.read_text()) == m
    assert io.completed_manifest(run / "curate", {"k": 1}, inputs) is not None
    migrated = json.loads(path.read_text())
    assert migrated["inputs"] == inputs and list(migrated["output_hashes"]) == ["train.jsonl"]
    assert migrated["started_at"] == m["started_at"]


def test_a_file_outside_the_run_folder_is_named_by_its_absolute_path(tmp_path):
    run = tmp_path / "runs" / "a"
    (run / "curate").mkdir(parents=True)
    (run / "recipe.yaml").write_text("name: x\n")
    data = tmp_path / "data" / "mine.jsonl"
    data.parent.mkdir()
    data.write_text("{}\n")
    assert io.file_key(run / "problems" / "train.jsonl", run / "curate") == "../problems/train.jsonl"
    assert io.file_key(data, run / "curate") == data.as_posix()
    # a stage run alone: the folders beside it count as its run
    assert io.file_key(tmp_path / "data" / "mine.jsonl", tmp_path / "data" / "out") == "../mine.jsonl"


def test_options_added_later_at_their_neutral_value_keep_a_finished_stage(tmp_path):
    """A stage finished before ``curate.teachers.share`` (or ``train.carry_optimizer``) existed is the
    same stage while the new option holds the value that behaves as before; any other value is not."""
    import reasondistill.config  # noqa: F401  (declares the options added later)

    old = {"max_per_problem": 2, "teachers": {"best": False, "quota": {}}, "train": {"lr": 1}}
    stage(tmp_path / "a", old)
    now = {"max_per_problem": 2, "teachers": {"best": False, "quota": {}, "share": {}},
           "train": {"lr": 1, "carry_optimizer": False, "init_optimizer": None}}
    again = stage(tmp_path / "a", now)
    assert again["this_run"] == {"skipped": True} and again["config"] == now  # recognised, then rewritten
    changed = {**now, "teachers": {**now["teachers"], "share": {"a": 1.0}}}
    stage(tmp_path / "b", old)
    assert stage(tmp_path / "b", changed)["this_run"] == {"skipped": False}  # a real change is a new stage
