"""``generate.modes`` names rows of the generation-mode table: a typo or a built-in mode that has
its own switch is one named config error (exit 2), before anything is read or written."""

from __future__ import annotations

from .conftest import error_line, problem_rows, write_jsonl

DUMMY = ["teacher.backend=dummy", "generate.samples=1", "generate.rationalize=false"]


def test_unknown_mode_is_named_with_a_close_match_and_nothing_is_written(cli, tmp_path):
    probs = write_jsonl(tmp_path / "p.jsonl", problem_rows(3))
    rc, _, err = cli("generate", "--problems", probs, "--out", tmp_path / "gen", *DUMMY, "generate.modes=[tailord]")
    line = error_line(err)
    assert rc == 2 and "generation mode (generate.modes) 'tailord'" in line and "did you mean 'tailored'" in line
    assert not (tmp_path / "gen" / "traces.jsonl").exists()


def test_a_mode_with_its_own_switch_names_that_switch(cli, tmp_path):
    probs = write_jsonl(tmp_path / "p.jsonl", problem_rows(3))
    rc, _, err = cli("generate", "--problems", probs, "--out", tmp_path / "gen", *DUMMY, "generate.modes=[ssb]")
    assert rc == 2 and "switched on by generate.hints=ssb" in error_line(err)


def test_run_refuses_an_unknown_mode_before_the_problems_stage(cli, tmp_path):
    rc, _, err = cli("run", "--out", tmp_path / "run", *DUMMY, "problems.n_train=4", "problems.n_eval=2",
                     "generate.modes=[nope]")
    assert rc == 2 and "'nope'" in error_line(err)
    assert not (tmp_path / "run" / "problems" / "manifest.json").exists()
