"""Bad input never crashes and never corrupts: every class of failure from issue 8, through the CLI.

Each case asserts the exit code, that the one error line names what the user typed (file:line,
field, config key or flag), that no traceback is printed, and that the finished run folder built
before the case (problems, traces, verdicts, curated data, an evaluation, a report) is
byte-identical afterwards, even when the bad command pointed its --out at that folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from .conftest import REPO, error_line, problem_rows, run, snapshot, write_jsonl

GSM8K = REPO / "tests" / "fixtures" / "gsm8k"
DUMMY = ["teacher.backend=dummy", "generate.samples=2", "generate.rationalize=false"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete small run (every stage the commands below write), built through the CLI."""
    from reasondistill.cli import main

    root = tmp_path_factory.mktemp("finished")
    run_dir, cache = root / "run", root / "cache"
    steps = [
        ["problems", GSM8K / "train.jsonl", "--eval-source", GSM8K / "test.jsonl", "--n-train", "12",
         "--n-eval", "6", "--out", run_dir / "problems"],
        ["generate", "--problems", run_dir / "problems" / "train.jsonl", "--out", run_dir / "generate",
         f"generate.cache_dir={cache}", *DUMMY],
        ["verify", "--problems", run_dir / "problems" / "train.jsonl", "--traces",
         run_dir / "generate" / "traces.jsonl", "--out", run_dir / "verify"],
        ["curate", "--problems", run_dir / "problems" / "train.jsonl", "--traces",
         run_dir / "generate" / "traces.jsonl", "--verdicts", run_dir / "verify" / "verdicts.jsonl",
         "--out", run_dir / "curate"],
        ["evaluate", "--model", "teacher", "--problems", run_dir / "problems" / "eval.jsonl", "--out",
         run_dir / "eval" / "teacher", f"generate.cache_dir={cache}", *DUMMY],
        ["report", run_dir],
    ]
    for argv in steps:
        assert main([str(a) for a in argv]) == 0, argv
    return run_dir


@pytest.fixture()
def earlier(finished_run: Path):
    """The finished run; after the test, proof that not one byte of it changed."""
    before = snapshot(finished_run)
    yield finished_run
    after = snapshot(finished_run)
    assert after.keys() == before.keys(), sorted(set(after) ^ set(before))
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, changed


def fails(cli, argv, code, *needles, absent=()):
    """Run ``argv``; assert exit ``code``, one error line containing every needle, no traceback."""
    rc, _, err = cli(*argv)
    assert rc == code, err
    line = error_line(err)
    for needle in needles:
        assert str(needle) in line, (needle, line)
    for word in absent:
        assert word not in line, (word, line)
    return line


def problems_rows(folder: Path) -> list[dict]:
    return [json.loads(x) for f in ("eval.jsonl", "train.jsonl") for x in (folder / f).read_text().splitlines()]


# --- silent data corruption: a CSV row with the wrong number of cells -----------------------


CSV_HEAD = "question,answer\n"


@pytest.mark.parametrize("body,line,cells", [
    ("What is 2 + 2?,4\nWhat is 1,000 + 3?,1003\n", 3, "3 cells"),  # unquoted comma: one cell too many
    ("What is 2 + 2?,4\nWhat is 7 + 1?\n", 3, "1 cells"),  # a short row
    ("What is 2 + 2?,4,extra,cells\n", 2, "4 cells"),
    ("What is 2 + 2?,4\n\n\n\"What is\n5 + 1?\",6,\n", 5, "3 cells"),  # a row is named by its first line
])
def test_csv_row_with_wrong_cell_count_is_an_error_at_its_line(cli, earlier, tmp_path, body, line, cells):
    src = tmp_path / "data.csv"
    src.write_text(CSV_HEAD + body, encoding="utf-8")
    fails(cli, ["problems", src, "--out", earlier / "problems", "--n-eval", "0", "--answer-format", "raw"], 2,
          f"data.csv:{line}", cells, "header has 2")


def test_csv_cell_count_errors_are_counted_skips_with_on_error_skip(cli, earlier, tmp_path):
    src = tmp_path / "data.csv"
    src.write_text(CSV_HEAD + "What is 2 + 2?,4\nWhat is 1,000 + 3?,1003\n\"What is 1,000 + 4?\",1004\n"
                   "short\n", encoding="utf-8")
    rc, out, err = cli("problems", src, "--out", tmp_path / "p", "--n-eval", "0", "--answer-format", "raw",
                       "--on-error", "skip")
    assert rc == 0, err
    assert json.loads(out)["skipped"] == {"cell_count": 2}
    rows = problems_rows(tmp_path / "p")
    assert sorted((r["prompt"], r["answer"]) for r in rows) == [("What is 1,000 + 4?", "1004"),
                                                               ("What is 2 + 2?", "4")]


def test_csv_repeated_header_is_an_error(cli, earlier, tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text("question,answer,question\nq,1,q2\n", encoding="utf-8")
    fails(cli, ["problems", src, "--out", earlier / "problems", "--n-eval", "0"], 2, "dup.csv:1", "'question'")


def test_wrong_field_type_in_a_record_file_is_named_at_its_line(cli, earlier, tmp_path):
    src = write_jsonl(tmp_path / "probs.jsonl", [*problem_rows(2), {**problem_rows(1)[0], "id": "x", "prompt": 5}])
    fails(cli, ["generate", "--problems", src, "--out", earlier / "generate", *DUMMY], 2,
          "probs.jsonl:3", "field 'prompt'", "expected a string")
    src = write_jsonl(tmp_path / "meta.jsonl", [{**problem_rows(1)[0], "meta": "not a mapping"}])
    fails(cli, ["evaluate", "--model", "teacher", "--problems", src, "--out", earlier / "eval" / "teacher",
                *DUMMY], 2, "meta.jsonl:1", "field 'meta'")


# --- silent shortfalls ----------------------------------------------------------------------


@pytest.mark.parametrize("flags,wanted", [
    (["--n-train", "100", "--n-eval", "2"], "n_train=100 but got 18"),
    (["--n-train", "5", "--n-eval", "50", "--eval-source", GSM8K / "test.jsonl"], "n_eval=50 but got 20"),
])
def test_fewer_problems_than_asked_is_warned_with_counts(cli, tmp_path, caplog, flags, wanted):
    with caplog.at_level(logging.WARNING):
        rc, out, err = cli("problems", GSM8K / "train.jsonl", "--out", tmp_path / "p", *flags)
    assert rc == 0, err
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert wanted in warning and "train.jsonl" in warning
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["outputs"]["shortfall"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a resumed (skipped) stage says it again
        assert cli("problems", GSM8K / "train.jsonl", "--out", tmp_path / "p", *flags)[0] == 0
    assert wanted in " ".join(r.getMessage() for r in caplog.records)


def test_shortfall_warning_names_the_skipped_rows(cli, tmp_path, caplog):
    src = tmp_path / "d.csv"
    src.write_text(CSV_HEAD + "a?,1\nb?,2\nc?,3,4\nd?,4\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        rc, _, err = cli("problems", src, "--out", tmp_path / "p", "--n-train", "10", "--n-eval", "1",
                         "--on-error", "skip", "--answer-format", "raw")
    assert rc == 0, err
    assert "n_train=10 but got 2" in caplog.text and "cell_count 1" in caplog.text


def test_shortfall_is_printed_by_a_real_process(tmp_path):
    done = run("problems", GSM8K / "train.jsonl", "--out", tmp_path / "p", "--n-train", "100", "--n-eval", "2")
    assert done.returncode == 0, done.stderr
    assert "n_train=100 but got 18" in done.stderr and "Traceback" not in done.stderr


# --- command-line paths are strings, never YAML; floats accept scientific notation ------------


@pytest.mark.parametrize("name", ["set #2.jsonl", "run: v2.jsonl", "a: b #c.jsonl", "[x].jsonl", "{y}.jsonl",
                                  "true.jsonl", "- dash.jsonl", "1e3.jsonl"])
def test_problem_file_names_that_are_yaml_syntax_are_read_as_paths(cli, tmp_path, name):
    src = tmp_path / name
    shutil.copy(GSM8K / "train.jsonl", src)
    held = tmp_path / f"held {name}"
    shutil.copy(GSM8K / "test.jsonl", held)
    rc, out, err = cli("problems", src, "--eval-source", held, "--out", tmp_path / "p", "--n-train", "4",
                       "--n-eval", "3")
    assert rc == 0, err
    rows = problems_rows(tmp_path / "p")
    assert len(rows) == 7
    assert {r["meta"]["file"] for r in rows} == {str(src), str(held)}


def test_cache_dir_with_a_hash_is_a_path(cli, earlier, tmp_path):
    probs = write_jsonl(tmp_path / "p.jsonl", problem_rows(3))
    rc, _, err = cli("generate", "--problems", probs, "--out", tmp_path / "g", f"generate.cache_dir={tmp_path}/c #1",
                     *DUMMY)
    assert rc == 0, err
    assert list((tmp_path / "c #1").glob("*.jsonl"))


@pytest.mark.parametrize("override", ["train.learning_rate=1e-4", "train.learning_rate=1E-4", "train.learning_rate=2.5e-5",
                                      "train.warmup_ratio=5e-2", "verify.timeout_s=1e1",
                                      "train.learning_rate='1e-4'"])
def test_scientific_notation_is_a_float_on_the_command_line(cli, tmp_path, override):
    rc, _, err = cli("problems", "chain_sum", "--out", tmp_path / "p", "--n-train", "2", "--n-eval", "1", override)
    assert rc == 0, err


def test_scientific_notation_is_a_float_in_a_recipe_and_in_objective_options(cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  learning_rate: 1e-4\n  method: dpo\n  objective: {beta: 5e-2}\n", encoding="utf-8")
    rc, _, err = cli("problems", "chain_sum", "--recipe", recipe, "--out", tmp_path / "p", "--n-train", "2",
                     "--n-eval", "1", "train.objective.beta=1e-3")
    assert rc == 0, err
    # it really is read as a number: a negative one is caught by the range check, not the type check
    line = fails(cli, ["problems", "chain_sum", "--recipe", recipe, "--out", tmp_path / "q", "--n-train", "2",
                       "train.learning_rate=-1e-4"], 2, "train.learning_rate=-1e-4", "must be > 0")
    assert "r.yaml" not in line


def test_recipe_value_of_the_wrong_type_names_the_recipe_file_and_key(cli, earlier, tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("train:\n  learning_rate: fast\n", encoding="utf-8")
    fails(cli, ["problems", "chain_sum", "--recipe", recipe, "--out", earlier / "problems"], 2,
          "mine.yaml", "train.learning_rate", "float")


# --- tracebacks become one-line errors ------------------------------------------------------


@pytest.mark.parametrize("spec,needle", [
    ("runs/nothing/train/model", "not found"),  # a relative path, not a hub id
    ("./student", "not found"),
    ("nothing/model", "tried as a hub id"),  # looks like a hub id: tried offline, then named
])
def test_missing_model_path_is_named(cli, earlier, tmp_path, monkeypatch, spec, needle):
    monkeypatch.chdir(tmp_path)
    fails(cli, ["evaluate", "--model", spec, "--problems", earlier / "problems" / "eval.jsonl",
                "--out", earlier / "eval" / "teacher"], 2, f"'{spec}'", needle)


@pytest.mark.parametrize("tokenizer", [False, True])
def test_pickle_only_model_folder_is_refused_with_the_reason(cli, earlier, tmp_path, tiny_model_dir, tokenizer):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    if tokenizer:
        for f in tiny_model_dir.glob("tokenizer*"):
            shutil.copy(f, folder)
    for argv in (["evaluate", "--model", folder, "--problems", earlier / "problems" / "eval.jsonl",
                  "--out", earlier / "eval" / "teacher"],
                 ["train", "sft", "--data", earlier / "curate" / "train.jsonl", "--out", tmp_path / "t",
                  f"train.student={folder}"]):
        fails(cli, argv, 2, str(folder), "no safetensors weights", "pickle files are not loaded",
              "pytorch_model.bin")


def test_model_folder_without_weights_tokenizer_or_config_is_named(cli, earlier, tmp_path, tiny_model_dir):
    no_weights = tmp_path / "no weights"
    no_weights.mkdir()
    for f in [tiny_model_dir / "config.json", *tiny_model_dir.glob("tokenizer*")]:
        shutil.copy(f, no_weights)
    fails(cli, ["evaluate", "--model", no_weights, "--problems", earlier / "problems" / "eval.jsonl",
                "--out", earlier / "eval" / "teacher"], 2, str(no_weights), "cannot load its weights")
    folder = tmp_path / "weights only"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder)
    shutil.copy(tiny_model_dir / "model.safetensors", folder)
    fails(cli, ["evaluate", "--model", folder, "--problems", earlier / "problems" / "eval.jsonl",
                "--out", earlier / "eval" / "teacher"], 2, str(folder), "tokenizer")
    (folder / "config.json").unlink()
    fails(cli, ["evaluate", "--model", folder, "--problems", earlier / "problems" / "eval.jsonl",
                "--out", earlier / "eval" / "teacher"], 2, str(folder), "config.json")


def test_out_naming_an_existing_file(cli, earlier, tmp_path):
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me\n")
    train = earlier / "problems" / "train.jsonl"
    for argv in (["problems", "chain_sum", "--n-train", "2", "--n-eval", "1"],
                 ["generate", "--problems", train, f"generate.cache_dir={tmp_path}/c", *DUMMY],
                 ["verify", "--problems", train, "--traces", earlier / "generate" / "traces.jsonl"],
                 ["evaluate", "--model", "teacher", "--problems", earlier / "problems" / "eval.jsonl",
                  f"generate.cache_dir={tmp_path}/c", *DUMMY]):
        fails(cli, [*argv, "--out", blocker], 1, str(blocker), "not a folder")
        fails(cli, [*argv, "--out", blocker / "sub"], 1, str(blocker), "not a folder")
    assert blocker.read_text() == "keep me\n"


@pytest.mark.parametrize("command", ["generate", "verify", "curate", "evaluate"])
def test_problems_naming_a_folder(cli, earlier, tmp_path, command):
    argv = {"generate": ["generate", "--problems", earlier / "problems", "--out", earlier / "generate", *DUMMY],
            "verify": ["verify", "--problems", earlier / "problems", "--traces", earlier / "generate",
                       "--out", earlier / "verify"],
            "curate": ["curate", "--problems", earlier / "problems", "--traces", earlier / "generate" / "traces.jsonl",
                       "--verdicts", earlier / "verify" / "verdicts.jsonl", "--out", earlier / "curate"],
            "evaluate": ["evaluate", "--model", "teacher", "--problems", earlier / "problems",
                         "--out", earlier / "eval" / "teacher", *DUMMY]}[command]
    fails(cli, argv, 2, str(earlier / "problems"), "is a folder, expected a file")


@pytest.mark.parametrize("task,config,needles", [
    ("chain_sum", "{max_terms: abc}", ["problems.task_config.max_terms", "integer", "'abc'"]),
    ("chain_sum", "{min_digits: 1.5}", ["problems.task_config.min_digits", "integer", "1.5"]),
    ("chain_sum", "{min_terms: [1, 2]}", ["problems.task_config.min_terms", "integer"]),
    ("chain_sum", "{allow_negation: maybe}", ["problems.task_config.allow_negation", "true or false"]),
    ("leg_counting", "{max_animals: '3'}", ["problems.task_config.max_animals", "'3'"]),
    ("chain_sum", "{min_terms: 5, max_terms: 2}", ["problems.task_config", "min_terms=5", "max_terms=2"]),
    ("chain_sum", "{max_term: 3}", ["problems.task_config", "max_term", "valid keys"]),
    ("chain_sum", "[1, 2]", ["problems.task_config", "mapping"]),
])
def test_reasoning_gym_task_config_errors_name_the_key(cli, earlier, task, config, needles):
    fails(cli, ["problems", task, "--out", earlier / "problems", "--n-train", "3", "--n-eval", "2",
                f"problems.task_config={config}"], 2, *needles)


def test_recipe_that_is_a_folder_or_not_utf8(cli, earlier, tmp_path):
    fails(cli, ["problems", "chain_sum", "--recipe", tmp_path, "--out", earlier / "problems"], 2, str(tmp_path),
          "is a folder")
    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("name: caf\xe9\ntrain:\n  epochs: 1\n".encode("latin-1"))
    fails(cli, ["problems", "chain_sum", "--recipe", recipe, "--out", earlier / "problems"], 2, "latin1.yaml:1",
          "not UTF-8")


def test_malformed_manifest_in_a_run_folder_is_named(cli, earlier, tmp_path):
    bad = tmp_path / "run"
    shutil.copytree(earlier, bad)
    (bad / "generate" / "manifest.json").write_text('{"outputs": {"n_traces": 3,\n oops}\n')
    fails(cli, ["report", bad], 2, "manifest.json:2", "invalid JSON")


def test_bad_backend_option_is_a_named_config_error(cli, earlier, tmp_path):
    probs = earlier / "problems" / "train.jsonl"
    fails(cli, ["generate", "--problems", probs, "--out", earlier / "generate", f"generate.cache_dir={tmp_path}/c",
                "teacher.backend=dummy", "teacher.options={accuracy: high}"], 2, "teacher.options.accuracy", "'high'")


def test_unexpected_error_is_short_and_verbose_shows_the_traceback(cli, earlier, tmp_path, monkeypatch):
    from reasondistill.backends.dummy import DummyBackend

    def broken(self, requests, sampling):  # a bug inside a backend, not bad input
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")
    monkeypatch.setattr(DummyBackend, "complete", broken)
    probs = earlier / "problems" / "train.jsonl"
    argv = ["generate", "--problems", probs, "--out", tmp_path / "generate", f"generate.cache_dir={tmp_path}/c",
            "teacher.backend=dummy"]
    line = fails(cli, argv, 1, "unexpected TypeError")
    rc, _, err = cli(*argv)
    assert "re-run with -v" in err and "Traceback" not in err
    rc, _, err = cli("-v", *argv)
    assert rc == 1 and "Traceback (most recent call last)" in err and line in err


def test_verbose_shows_the_traceback_of_a_known_error_too(cli, earlier, tmp_path):
    rc, _, err = cli("-v", "generate", "--problems", tmp_path / "none.jsonl", "--out", earlier / "generate", *DUMMY)
    assert rc == 2 and "Traceback (most recent call last)" in err and "none.jsonl: file not found" in err


# --- errors point at what the user typed ----------------------------------------------------


@pytest.mark.parametrize("source", ["data/missing/", "data/missing.jsonl", "./missing", "../nowhere/train"])
def test_missing_path_as_problems_source_is_a_missing_file_not_a_task(cli, earlier, tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    line = fails(cli, ["problems", source, "--out", earlier / "problems"], 2, f"error: {source}: ",
                 absent=("unknown reasoning-gym task", "arc_agi"))
    assert "no such file or folder" in line or "file not found" in line


def test_unknown_task_word_also_says_no_such_file(cli, earlier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(cli, ["problems", "chain_summ", "--out", earlier / "problems"], 2, "'chain_summ'", "chain_sum",
          "no file or folder named 'chain_summ'")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_non_utf8_byte_deep_in_a_file_is_reported_at_its_line(cli, earlier, tmp_path, suffix):
    if suffix == ".jsonl":
        lines = [json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"}) for i in range(2000)]
    else:
        lines = ["question,answer"] + [f"What is {i} + 1?,{i + 1}" for i in range(2000)]
    data = bytearray(("\n".join(lines) + "\n").encode())
    data[data.index(b"\n", 30_000) - 3] = 0xFF  # well past the first 8 KB read
    src = tmp_path / f"big{suffix}"
    src.write_bytes(bytes(data))
    lineno = data[:data.index(b"\xff")].count(b"\n") + 1
    assert lineno > 500
    fails(cli, ["problems", src, "--out", earlier / "problems", "--on-error", "skip"], 2, f"big{suffix}:{lineno}",
          "not UTF-8", "0xff")


@pytest.mark.parametrize("argv,typed", [
    (["--n-train", "-3"], "--n-train -3"),
    (["--n-eval", "-1"], "--n-eval -1"),
    (["--n-train", "2", "problems.n_evl=3"], "override 'problems.n_evl=3'"),
    (["--n-train", "2", "train.epochs=lots"], "override 'train.epochs=lots'"),
    (["--n-train", "2", "train.epochs=[1"], "override 'train.epochs=[1'"),
])
def test_errors_from_flags_name_the_flag_not_the_builtin_recipe(cli, earlier, argv, typed):
    fails(cli, ["problems", "chain_sum", "--out", earlier / "problems", *argv], 2, typed,
          absent=(".yaml", "program_teacher"))


# --- success on nothing ---------------------------------------------------------------------


def test_report_on_an_empty_or_missing_folder_fails_and_creates_nothing(cli, tmp_path, earlier):
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(cli, ["report", empty], 2, str(empty), "no evaluation")
    assert list(empty.iterdir()) == []
    missing = tmp_path / "missing"
    fails(cli, ["report", missing], 2, str(missing), "not found")
    assert not missing.exists()
    no_eval = tmp_path / "no-eval"
    shutil.copytree(earlier, no_eval)
    shutil.rmtree(no_eval / "eval")
    before = snapshot(no_eval)
    fails(cli, ["report", no_eval], 2, "no evaluation")
    assert snapshot(no_eval) == before


def test_a_command_never_creates_its_input(cli, earlier, tmp_path):
    fails(cli, ["generate", "--problems", tmp_path / "in" / "p.jsonl", "--out", tmp_path / "g", *DUMMY], 2,
          "p.jsonl: file not found")
    fails(cli, ["verify", "--problems", earlier / "problems" / "train.jsonl", "--traces", tmp_path / "t.jsonl",
                "--out", tmp_path / "v"], 2, "t.jsonl: file not found")
    assert not (tmp_path / "in").exists() and not (tmp_path / "t.jsonl").exists()


# --- inputs people really have --------------------------------------------------------------


def test_utf8_bom_in_jsonl_csv_and_recipe(cli, tmp_path):
    bom = b"\xef\xbb\xbf"
    jsonl = tmp_path / "excel.jsonl"
    jsonl.write_bytes(bom + (GSM8K / "train.jsonl").read_bytes())
    rc, out, err = cli("problems", jsonl, "--out", tmp_path / "a", "--n-train", "15", "--n-eval", "5")
    assert rc == 0, err
    assert json.loads(out)["n_train"] + json.loads(out)["n_eval"] == 20
    csv = tmp_path / "excel.csv"
    csv.write_bytes(bom + "q,a\r\n\"What is 1,000 + 3?\",1003\r\nWhat is 2 + 2?,4\r\n".encode())
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(bom + b"problems:\n  fields: {prompt: q, answer: a}\n")
    rc, out, err = cli("problems", csv, "--recipe", recipe, "--out", tmp_path / "b", "--n-eval", "1",
                       "--answer-format", "raw")
    assert rc == 0, err
    assert sorted((r["prompt"], r["answer"]) for r in problems_rows(tmp_path / "b")) == [
        ("What is 1,000 + 3?", "1003"), ("What is 2 + 2?", "4")]


def test_bom_in_a_record_file_between_stages(cli, earlier, tmp_path):
    probs = tmp_path / "edited.jsonl"
    probs.write_bytes(b"\xef\xbb\xbf" + (earlier / "problems" / "train.jsonl").read_bytes())
    rc, out, err = cli("generate", "--problems", probs, "--out", tmp_path / "g", f"generate.cache_dir={tmp_path}/c",
                       *DUMMY)
    assert rc == 0, err
    assert json.loads(out)["n_traces"] == 24


# --- the same promises hold in a real process -----------------------------------------------


def test_real_process_prints_one_line_and_exit_codes(tmp_path):
    src = tmp_path / "data.csv"
    src.write_text(CSV_HEAD + "What is 1,000 + 3?,1003\n", encoding="utf-8")
    done = run("problems", src, "--out", tmp_path / "p", "--n-eval", "0")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith(f"reasondistill: error: {src}:2: row has 3 cells")
    assert not (tmp_path / "p").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = run("problems", "chain_sum", "--out", blocker, "--n-train", "2", "--n-eval", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr and f"{blocker} exists" in done.stderr
