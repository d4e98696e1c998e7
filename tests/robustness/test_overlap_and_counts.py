"""Issue 16, through the CLI: an --out that would replace an input or another stage's folder,
options that meant something else (0 as "unset", -2 as a slice), duplicate problem ids found
stages late, and messages that did not help.

Each case asserts exit 2, the one error line naming what the user typed (both paths for an
overlap), no traceback, and that the data at risk is byte-identical afterwards.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from .conftest import error_line, problem_rows, snapshot, write_jsonl
from .test_bad_input import DUMMY, GSM8K, earlier, fails, finished_run  # noqa: F401 (fixtures)


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A user's folder holding a dataset named like a problems stage output."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(GSM8K / "train.jsonl", folder / "train.jsonl")
    shutil.copy(GSM8K / "test.jsonl", folder / "eval.jsonl")
    return folder


def unchanged(folder: Path, before: dict[str, bytes]) -> None:
    after = snapshot(folder)
    assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
    assert [k for k in before if before[k] != after[k]] == []


# --- 1. an output that replaces an input ----------------------------------------------------


@pytest.mark.parametrize("spelling", ["relative", "dot", "absolute", "symlink"])
def test_problems_out_on_the_folder_of_its_source_is_refused_however_spelled(cli, data, tmp_path, monkeypatch,
                                                                            spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(data, target_is_directory=True)
    out = {"relative": "data", "dot": "./data", "absolute": str(data), "symlink": "link"}[spelling]
    before = snapshot(data)
    line = fails(cli, ["problems", "data/train.jsonl", "--out", out, "--n-train", "5", "--n-eval", "2"], 2,
                 "--out", "data/train.jsonl", "train.jsonl")
    assert out.removeprefix("./") in line
    unchanged(data, before)


def test_problems_eval_source_inside_out_is_refused(cli, data, tmp_path):
    before = snapshot(data)
    fails(cli, ["problems", GSM8K / "train.jsonl", "--eval-source", data / "eval.jsonl", "--out", data,
                "--n-train", "5", "--n-eval", "2"], 2, f"--eval-source {data / 'eval.jsonl'}", f"--out {data}")
    unchanged(data, before)


def test_a_recipe_where_a_stage_writes_is_refused(cli, data, tmp_path):
    recipe = data / "manifest.json"  # an odd name, but the user's file: it must survive
    recipe.write_text("train:\n  epochs: 1\n", encoding="utf-8")
    before = snapshot(data)
    fails(cli, ["problems", "chain_sum", "--recipe", recipe, "--out", data, "--n-train", "2", "--n-eval", "1"], 2,
          f"--recipe {recipe}", f"--out {data}")
    unchanged(data, before)


def test_an_input_beside_the_outputs_is_fine(cli, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    mine = folder / "mine.jsonl"  # not a name the problems stage writes
    shutil.copy(GSM8K / "train.jsonl", mine)
    rc, out, err = cli("problems", mine, "--out", folder, "--n-train", "5", "--n-eval", "2")
    assert rc == 0, err
    assert mine.read_bytes() == (GSM8K / "train.jsonl").read_bytes()
    rc, out, err = cli("problems", mine, "--out", folder, "--n-train", "5", "--n-eval", "2")
    assert rc == 0 and json.loads(out)["n_train"] == 5, err


@pytest.mark.parametrize("command,stage", [
    ("generate", "problems"), ("verify", "generate"), ("curate", "verify"), ("evaluate", "curate"),
    ("generate", "eval/teacher"), ("verify", "curate"),
])
def test_out_on_another_stages_finished_folder_is_refused(cli, earlier, tmp_path, command, stage):
    run = earlier
    out = run / stage
    argv = {"generate": ["generate", "--problems", run / "problems" / "train.jsonl",
                         f"generate.cache_dir={tmp_path}/c", *DUMMY],
            "verify": ["verify", "--problems", run / "problems" / "train.jsonl", "--traces",
                       run / "generate" / "traces.jsonl"],
            "curate": ["curate", "--problems", run / "problems" / "train.jsonl", "--traces",
                       run / "generate" / "traces.jsonl", "--verdicts", run / "verify" / "verdicts.jsonl"],
            "evaluate": ["evaluate", "--model", "teacher", "--problems", run / "problems" / "eval.jsonl",
                         f"generate.cache_dir={tmp_path}/c", *DUMMY]}[command]
    line = fails(cli, [*argv, "--out", out], 2, f"--out {out}", str(out / "manifest.json"))
    assert "stage" in line


def test_verify_out_on_the_traces_folder_names_both(cli, earlier):
    traces = earlier / "generate" / "traces.jsonl"
    fails(cli, ["verify", "--problems", earlier / "problems" / "train.jsonl", "--traces", traces,
                "--out", earlier / "generate"], 2, str(earlier / "generate"), "generate stage")


def test_an_input_named_like_an_output_inside_a_plain_folder_is_refused(cli, earlier, tmp_path):
    """No manifest to go by: the names the stage writes decide."""
    folder = tmp_path / "mine"
    folder.mkdir()
    traces = folder / "verdicts.jsonl"  # traces saved under the name verify writes
    shutil.copy(earlier / "generate" / "traces.jsonl", traces)
    before = snapshot(folder)
    fails(cli, ["verify", "--problems", earlier / "problems" / "train.jsonl", "--traces", traces, "--out", folder],
          2, f"--traces {traces}", f"--out {folder}")
    pairs = folder / "pairs.jsonl"
    shutil.copy(earlier / "curate" / "train.jsonl", pairs)
    before = snapshot(folder)
    fails(cli, ["pairs", "--train", pairs, "--negatives", earlier / "curate" / "negatives.jsonl", "--out", folder],
          2, f"--train {pairs}", f"--out {folder}")
    unchanged(folder, before)


def test_rerunning_a_stage_on_its_own_folder_still_works(cli, earlier, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(earlier, run)
    for argv in (["problems", GSM8K / "train.jsonl", "--eval-source", GSM8K / "test.jsonl", "--n-train", "12",
                  "--n-eval", "6", "--out", run / "problems"],
                 ["verify", "--problems", run / "problems" / "train.jsonl", "--traces",
                  run / "generate" / "traces.jsonl", "--out", run / "verify"],
                 ["report", run]):
        rc, out, err = cli(*argv)
        assert rc == 0, (argv, err)
    assert json.loads(cli("verify", "--problems", run / "problems" / "train.jsonl", "--traces",
                          run / "generate" / "traces.jsonl", "--out", run / "verify")[1])["counts"]["n"] > 0


def test_run_refuses_a_stage_folder_and_a_source_it_would_overwrite(cli, earlier, tmp_path):
    fails(cli, ["run", "--out", earlier / "generate", "--until", "problems"], 2, f"--out {earlier / 'generate'}",
          "generate stage")
    run = tmp_path / "run"
    source = write_jsonl(run / "problems" / "train.jsonl", problem_rows(4))
    before = snapshot(run)
    fails(cli, ["run", "--out", run, "--until", "problems", f"problems.source={source}"], 2,
          f"problems.source {source}", f"--out {run}")
    unchanged(run, before)


def test_train_out_inside_the_student_model_folder_is_refused(cli, earlier, tmp_path, tiny_model_dir):
    student = tmp_path / "student"
    shutil.copytree(tiny_model_dir, student)
    before = snapshot(student)
    fails(cli, ["train", "sft", "--data", earlier / "curate" / "train.jsonl", "--out", student / "trained",
                f"train.student={student}"], 2, f"train.student {student}", str(student / "trained"))
    fails(cli, ["train", "sft", "--data", earlier / "curate" / "train.jsonl", "--out", student,
                f"train.student={student}"], 2, f"train.student {student}")
    unchanged(student, before)


def test_train_out_on_its_logprob_store_or_data_is_refused(cli, earlier, tmp_path):
    store = tmp_path / "logprobs"
    store.mkdir()
    (store / "index.json").write_text("{}")
    fails(cli, ["train", "kd", "--data", earlier / "curate" / "train.jsonl", "--logprobs", store, "--out", store],
          2, f"--logprobs {store}", f"--out {store}")
    fails(cli, ["train", "kd", "--data", earlier / "curate" / "train.jsonl", "--logprobs", store,
                "--out", store / "t"], 2, f"--logprobs {store}", "inside")
    data = tmp_path / "t" / "loss.jsonl"  # named like the loss log train writes
    data.parent.mkdir()
    shutil.copy(earlier / "curate" / "train.jsonl", data)
    fails(cli, ["train", "sft", "--data", data, "--out", tmp_path / "t"], 2, f"--data {data}")
    assert (store / "index.json").read_text() == "{}"


def test_export_onto_or_inside_its_model_is_refused_before_loading(cli, tmp_path, tiny_model_dir, monkeypatch):
    from reasondistill import models

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models, "load_model", no_load)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = snapshot(model)
    fails(cli, ["export", model, "--out", model], 2, f"model {model}", f"--out {model}")
    fails(cli, ["export", model, "--out", model / "export"], 2, "inside")
    unchanged(model, before)


def test_evaluate_out_inside_the_model_folder_is_refused(cli, earlier, tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = snapshot(model)
    fails(cli, ["evaluate", "--model", model, "--problems", earlier / "problems" / "eval.jsonl",
                "--out", model / "eval"], 2, f"--model {model}", "inside")
    unchanged(model, before)


# --- 2. options that meant something else --------------------------------------------------


@pytest.mark.parametrize("num", ["0", "-2"])
def test_num_processes_zero_or_negative_is_refused_before_anything_is_written(cli, earlier, tmp_path, num):
    out = tmp_path / "t"
    fails(cli, ["train", "sft", "--data", earlier / "curate" / "train.jsonl", "--out", out, "--launch", "ddp",
                "--num-processes", num], 2, f"--num-processes {num}", ">= 1")
    assert not out.exists()


@pytest.mark.parametrize("override", ["eval.n=0", "eval.n=-2"])
def test_eval_n_is_a_count_not_a_slice(cli, earlier, tmp_path, override):
    out = earlier / "eval" / "teacher"
    fails(cli, ["evaluate", "--model", "teacher", "--problems", earlier / "problems" / "eval.jsonl", "--out", out,
                f"generate.cache_dir={tmp_path}/c", *DUMMY, override], 2, f"override '{override}'", ">= 1")


@pytest.mark.parametrize("override", [
    "generate.samples=0", "generate.max_new_tokens=-1", "generate.rationalize_samples=0", "teacher.batch_size=0",
    "generate.sandbox.workers=0", "generate.ray.num_workers=-1", "generate.probe.samples=0",
    "curate.max_per_problem=0", "curate.length.budget=0", "curate.student_aware.top=0",
    "curate.decontaminate.ngram=0", "train.max_steps=0", "train.batch_size=0", "train.grad_accum=-1",
    "train.logging_steps=0", "train.lora_r=0", "eval.samples=-1", "eval.seeds=-3", "eval.batch_size=0",
    "loop.rounds=0", "loop.max_problems=0", "loop.student_samples=-1", "compare.max_steps=0", "problems.seed=-1",
    "generate.seed=-5", "generate.top_logprobs=-1", "curate.random=-1",
    "teacher.backend=openai teacher.model=m teacher.options.concurrency=0",
    "teacher.backend=openai teacher.model=m teacher.options.max_retries=-1",
    "train.method=kd train.objective.top_k=0", "train.method=grpo train.objective.num_iterations=0",
    "train.max_steps=10 train.epochs=-1",
])
def test_counts_are_counts_everywhere(cli, earlier, override):
    *rest, culprit = override.split()
    key, value = culprit.split("=")
    line = fails(cli, ["problems", "chain_sum", "--out", earlier / "problems", *rest, culprit], 2,
                 key, "must be >=", f"got {value}")
    assert "built-in recipe" not in line and f"override '{culprit}'" in line


@pytest.mark.parametrize("override", [
    "eval.samples=0", "loop.student_samples=0", "generate.top_logprobs=0", "generate.ray.max_retries=0",
    "curate.random=0", "train.max_steps=-1", "problems.seed=0", "eval.n=3",
    "teacher.backend=openai teacher.model=m teacher.options.max_retries=0",
])
def test_documented_zeros_and_sentinels_are_kept(cli, tmp_path, override):
    rc, _, err = cli("problems", "chain_sum", "--out", tmp_path / "p", "--n-train", "2", "--n-eval", "0",
                     *override.split())
    assert rc == 0, err


@pytest.mark.parametrize("argv,typed", [
    (["pairs", "--max-pairs-per-problem", "0"], "--max-pairs-per-problem 0"),
    (["pairs", "--seed", "-1"], "--seed -1"),
    (["loop", "--rounds", "0"], "--rounds 0"),
    (["view", ".", "--port", "-1"], "--port -1"),
    (["view", ".", "--port", "70000"], "--port 70000"),
])
def test_int_flags_are_checked_by_one_rule(cli, tmp_path, argv, typed):
    if argv[0] == "pairs":
        argv = [*argv, "--train", tmp_path / "a", "--negatives", tmp_path / "b", "--out", tmp_path / "p"]
    fails(cli, argv, 2, typed)
    assert not (tmp_path / "p").exists()


# --- 3. duplicate problem ids ---------------------------------------------------------------


@pytest.fixture()
def dup_problems(tmp_path: Path) -> Path:
    rows = problem_rows(5)
    rows[3] = {**rows[3], "id": rows[1]["id"]}  # row 4 repeats row 2's id
    return write_jsonl(tmp_path / "dup.jsonl", rows)


@pytest.mark.parametrize("command", ["generate", "verify", "curate", "evaluate", "evaluate-harness-set"])
def test_duplicate_problem_id_is_an_error_where_the_file_is_read(cli, earlier, tmp_path, dup_problems, command):
    run = earlier
    out = tmp_path / "out"
    argv = {"generate": ["generate", "--problems", dup_problems, f"generate.cache_dir={tmp_path}/c", *DUMMY],
            "verify": ["verify", "--problems", dup_problems, "--traces", run / "generate" / "traces.jsonl"],
            "curate": ["curate", "--problems", dup_problems, "--traces", run / "generate" / "traces.jsonl",
                       "--verdicts", run / "verify" / "verdicts.jsonl"],
            "evaluate": ["evaluate", "--model", "teacher", "--problems", dup_problems,
                         f"generate.cache_dir={tmp_path}/c", *DUMMY],
            "evaluate-harness-set": ["evaluate", "--model", "teacher", "--problems", dup_problems,
                                     f"generate.cache_dir={tmp_path}/c", *DUMMY, "eval.n=2"]}[command]
    fails(cli, [*argv, "--out", out], 2, "dup.jsonl:4", "'p1'", "duplicate id", "line 2")
    assert not (out / "manifest.json").exists() and not (out / "traces.jsonl").exists()


def test_duplicate_source_id_in_the_problems_stage_is_an_error_or_a_counted_skip(cli, tmp_path):
    rows = [{"key": f"k{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(6)]
    rows[4]["key"] = "k2"
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    argv = ["problems", src, "--n-eval", "1", "--answer-format", "raw", "problems.fields.id=key"]
    fails(cli, [*argv, "--out", tmp_path / "a"], 2, "src.jsonl:5", "'k2'")
    assert not (tmp_path / "a").exists()
    rc, out, err = cli(*argv, "--out", tmp_path / "b", "--on-error", "skip")
    assert rc == 0, err
    assert json.loads(out)["skipped"] == {"duplicate_id": 1}


# --- 4. messages that help ------------------------------------------------------------------


@pytest.mark.parametrize("override", ["=5", "train..learning_rate=1e-4", ".epochs=2", "train.=2", " .x=1"])
def test_override_with_an_empty_key_part_is_named_as_typed(cli, earlier, override):
    line = fails(cli, ["problems", "chain_sum", "--out", earlier / "problems", "--n-train", "2", override], 2,
                 f"override '{override}'")
    assert "problems.task=" not in line and "problems.source=" not in line and "n_train" not in line


def test_export_bad_dtype_is_refused_before_the_model_loads(cli, tmp_path, tiny_model_dir, monkeypatch):
    from reasondistill import models

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models, "load_model", no_load)
    monkeypatch.setattr(models, "load_tokenizer", no_load)
    fails(cli, ["export", tiny_model_dir, "--out", tmp_path / "e", "--dtype", "float42"], 2, "--dtype float42",
          "float32")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("what", ["missing", "file"])
def test_logprobs_that_are_missing_or_a_file_say_so(cli, earlier, tmp_path, what):
    store = tmp_path / "nowhere"
    if what == "file":
        store.write_text("x")
    fails(cli, ["train", "kd", "--data", earlier / "curate" / "train.jsonl", "--logprobs", store,
                "--out", tmp_path / "t"], 2, str(store), "not found" if what == "missing" else "is a file",
          absent=("not a finished",))


@pytest.mark.parametrize("kind", ["dataset", "dataset_dict"])
def test_datasets_folder_missing_its_info_is_an_input_error(cli, tmp_path, kind):
    import datasets

    ds = datasets.Dataset.from_list([{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(4)])
    folder = tmp_path / "ds"
    if kind == "dataset":
        ds.save_to_disk(str(folder))
        (folder / "dataset_info.json").unlink()
    else:
        datasets.DatasetDict({"train": ds}).save_to_disk(str(folder))
        (folder / "train" / "dataset_info.json").unlink()
    line = fails(cli, ["problems", folder, "--out", tmp_path / "p", "--n-eval", "1", "--answer-format", "raw"], 2,
                 str(folder), "save_to_disk", absent=("output",))
    assert line.startswith(f"reasondistill: error: {folder}")
    assert not (tmp_path / "p").exists()


def test_view_on_a_busy_port_names_the_address_and_a_way_out(cli, earlier):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fails(cli, ["view", earlier, "--port", port], 2, f"127.0.0.1:{port}", "already in use", "--port 0",
              absent=("output:",))


def test_error_lines_stay_single_in_a_real_process(tmp_path):
    from .conftest import run

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(GSM8K / "train.jsonl", folder / "train.jsonl")
    done = run("problems", folder / "train.jsonl", "--out", folder)
    assert done.returncode == 2, done.stderr
    line = error_line(done.stderr)
    assert str(folder / "train.jsonl") in line and f"--out {folder}" in line
    assert sorted(p.name for p in folder.iterdir()) == ["train.jsonl"]


def test_a_run_rerun_from_its_own_recipe_file_is_fine(cli, tmp_path):
    out = tmp_path / "run"
    argv = ["--until", "problems", "problems.n_train=3", "problems.n_eval=1"]
    rc, _, err = cli("run", "--out", out, *argv)
    assert rc == 0, err
    before = snapshot(out / "problems")
    rc, _, err = cli("run", out / "recipe.yaml", "--out", out, "--until", "problems")
    assert rc == 0, err
    unchanged(out / "problems", before)  # the same recipe: the finished stage is reused


def test_audit_refuses_a_problem_file_it_would_overwrite(cli, earlier, tmp_path):
    evals = tmp_path / "eval"
    shutil.copytree(earlier / "eval" / "teacher", evals)
    problems = evals / "audit.jsonl"  # the held-out problems saved under the name the audit writes
    shutil.copy(earlier / "problems" / "eval.jsonl", problems)
    before = snapshot(evals)
    fails(cli, ["evaluate", "--audit", evals, "--problems", problems], 2, f"--audit {evals}", f"--problems {problems}")
    unchanged(evals, before)
    fails(cli, ["evaluate", "--audit", earlier / "generate"], 2, "generate stage")
