"""A component's own options in a recipe file (a curation policy's, a generation mode's, a
backend's, an objective's) and the table names it gives are checked when the recipe loads, in
one step: the command fails with exit 2, one error line naming the file and the key, and writes
nothing."""

from __future__ import annotations

import pytest

from .conftest import error_line

BAD = [
    ("curate:\n  length: {unit: words}\n", "curate.length.unit = 'words'"),
    ("curate:\n  teachers: {share: {a: -1}}\n", "curate.teachers.share"),
    ("curate:\n  student_aware: {top: 0}\n", "curate.student_aware.top"),
    ("generate:\n  probe: {model: someone}\n", "generate.probe.model = 'someone'"),
    ("generate:\n  sandbox: {network: none}\n", "generate.sandbox.network = 'none'"),
    ("generate:\n  ray: {address: 'host:99999'}\n", "generate.ray.address"),
    ("teacher: {backend: dummy, options: {accuracy: high}}\n", "teacher.options.accuracy"),
    ("train: {method: redi, objective: {alpha: 2}}\n", "redi.alpha = 2"),
    ("train: {method: kd, objective: {loss: jsd, beta: 2}}\n", "kd.beta must be in [0, 1]"),
    ("train: {method: kd, objective: {loss_options: {gamma: 1}}}\n", "kd.loss_options: 'gamma' is not an option"),
    ("verify: {verifier: magic}\n", "unknown verifier (verify.verifier) 'magic'"),
]


@pytest.mark.parametrize("text,needle", BAD, ids=[n.split(" ")[0] for _, n in BAD])
def test_component_options_in_a_recipe_file_fail_at_load(cli, tmp_path, text, needle):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"name: bad\n{text}")
    rc, _, err = cli("run", recipe, "--out", tmp_path / "run")
    assert rc == 2, err
    line = error_line(err)
    assert str(recipe) in line and needle in line, line
    assert not (tmp_path / "run").exists()


def test_an_override_of_a_policy_option_is_named(cli, tmp_path):
    rc, _, err = cli("run", "--out", tmp_path / "run", "curate.length.budget_by_difficulty=[[0.8, 10], [0.2, 5]]")
    assert rc == 2, err
    line = error_line(err)
    assert "override 'curate.length.budget_by_difficulty=" in line and "easy to hard" in line, line
    assert not (tmp_path / "run").exists()
