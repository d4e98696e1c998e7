import json

import pytest

from reasondistill import cli

COMMANDS = ["run", "compare", "loop", "problems", "generate", "verify", "curate", "pairs", "train", "evaluate", "export",
            "report", "recipes"]


@pytest.mark.parametrize("cmd", [None, *COMMANDS])
def test_help_describes_options(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(([cmd] if cmd else []) + ["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: reasondistill" in text
    if cmd in ("problems", "generate", "verify", "curate", "evaluate"):
        assert "--out" in text and "KEY=VALUE" in text


def test_problems_from_reasoning_gym(tmp_path, capsys):
    rc = cli.main(["problems", "chain_sum", "--out", str(tmp_path / "p"), "--n-train", "5", "--n-eval", "3"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_train"] == 5 and out["n_eval"] == 3
    rows = [json.loads(x) for x in (tmp_path / "p" / "train.jsonl").read_text().splitlines()]
    assert all("answer" in r and r["answer"] for r in rows)


def test_problems_gsm8k_file(tmp_path, capsys):
    src = tmp_path / "gsm.jsonl"
    src.write_text(json.dumps({"question": "2 apples and 3 more?", "answer": "2+3=5\n#### 5"}) + "\n" +
                   json.dumps({"question": "How many?", "answer": "lots\n#### 1,000"}) + "\n")
    rc = cli.main(["problems", str(src), "--out", str(tmp_path / "p"), "--n-eval", "1", "--n-train", "1"])
    assert rc == 0
    rows = [json.loads(x) for f in ("train", "eval") for x in (tmp_path / "p" / f"{f}.jsonl").read_text().splitlines()]
    assert sorted(r["answer"] for r in rows) == ["1000", "5"]


@pytest.mark.parametrize("content,needle", [
    ('{"question": "q", "answer": "#### 1"}\n{bad json\n', "bad.jsonl:2"),
    ('{"question": "q"}\n', "field 'answer'"),
    ("", "empty"),
    ('{"question": "q", "answer": "no marker"}\n', "answer"),
])
def test_problems_bad_input_exits_nonzero_with_place(tmp_path, capsys, content, needle):
    src = tmp_path / "bad.jsonl"
    src.write_text(content)
    rc = cli.main(["problems", str(src), "--out", str(tmp_path / "p"), "--answer-format", "gsm8k",
                   "--n-eval", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "reasondistill: error:" in err and needle in err and "bad.jsonl" in err
    assert not (tmp_path / "p" / "train.jsonl").exists()


def test_wrong_field_mapping_is_explained(tmp_path, capsys):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps({"q": "1+1", "a": "2"}) + "\n")
    rc = cli.main(["problems", str(src), "--out", str(tmp_path / "p"), "--n-eval", "0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "question" in err and "problems.fields" in err


def test_unknown_override_key_is_an_error(tmp_path, capsys):
    rc = cli.main(["problems", "chain_sum", "--out", str(tmp_path / "p"), "problems.n_evl=3"])
    assert rc == 2 and "did you mean 'n_eval'" in capsys.readouterr().err


def test_recipes_lists_builtins(capsys):
    assert cli.main(["recipes"]) == 0
    assert "default" in capsys.readouterr().out


@pytest.mark.parametrize("argv,name,n_eval", [
    (["run"], "default", 300),
    (["run", "problems.n_eval=7"], "default", 7),
    (["run", "--out", "x", "problems.n_eval=7", "train.epochs=2"], "default", 7),
    (["run", "llm-teacher", "problems.n_eval=5"], "llm-teacher", 5),
])
def test_run_arguments_resolve_recipe_and_overrides(argv, name, n_eval):
    recipe = cli.run_recipe(cli.parse_args(argv))
    assert recipe.name == name and recipe.problems.n_eval == n_eval


@pytest.mark.parametrize("argv,needle", [
    (["train", "redi", "--data", "x.jsonl", "--out", "o", "train.objective.alpha=1.5"], "redi.alpha = 1.5"),
    (["train", "kd", "--data", "x.jsonl", "--out", "o", "train.objective.loss=nope"], "kd.loss = 'nope'"),
    (["train", "kd", "--data", "x.jsonl", "--out", "o"], "--logprobs"),
])
def test_bad_objective_configs_fail_before_any_model_load(argv, needle, capsys, monkeypatch):
    from reasondistill import models

    def boom(*a, **k):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(models, "load_model", boom)
    monkeypatch.setattr(models, "resolve", boom)
    assert cli.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_runs_root_flag_sets_where_run_references_look(tmp_path, monkeypatch):
    from reasondistill import pipeline
    monkeypatch.delenv(pipeline.RUNS_ENV, raising=False)
    args = cli.parse_args(["loop", "--runs-root", str(tmp_path / "r"), "--out", str(tmp_path / "o")])
    cli._runs_root(args)
    assert pipeline.runs_root() == tmp_path / "r"
    monkeypatch.delenv(pipeline.RUNS_ENV)
    assert pipeline.runs_root() == pipeline.Path("runs")
    assert cli.main(["run", "teacher.model=run:nope", "teacher.backend=transformers", "--out",
                     str(tmp_path / "never")]) == 2  # an unknown reference is a recipe error, before any work
    assert not (tmp_path / "never").exists()
