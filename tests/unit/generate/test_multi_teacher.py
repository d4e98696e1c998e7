"""Several teachers per recipe (issue 9): routing, per-teacher sample counts, the per-teacher
sample cache, and the multi-teacher traces flowing through verify, curate and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasondistill import curate, evaluate, generate, io, verify
from reasondistill.backends import BackendPool
from reasondistill.backends.dummy import DummyBackend
from reasondistill.backends.program import ProgramBackend
from reasondistill.config import (CurateConfig, EvalConfig, GenerateConfig, NamedTeacherConfig, RouteConfig,
                                  BackendConfig, TeachersConfig, build)
from reasondistill.layout import Layout
from reasondistill.records import Problem, Trace
from reasondistill.report import build_report, write_report
from tests.helpers import recipe

SUMS = [Problem(f"sum{i}", "gen", f"What is {i} + {i + 2}?", str(2 * i + 2),
                {"task": "chain_sum", "expression": f"{i} + {i + 2}"}) for i in range(4)]
BOOK = [Problem(f"book{i}", "book", f"How many legs do {i + 1} birds have?", str(2 * (i + 1)),
                {"task": "leg_counting"}) for i in range(3)]


def teachers(order=("prog", "guess", "hint")):
    """prog: the program solver on the chain_sum problems, 1 sample; guess: a dummy (30% right) on every problem,
    3 samples; hint: a dummy that is always wrong on the 'book' problems, 2 samples (then STaR)."""
    table = {
        "prog": NamedTeacherConfig(name="prog", backend="program", samples=1,
                                   route=RouteConfig(field="task", values=["chain_sum"])),
        "guess": NamedTeacherConfig(name="guess", backend="dummy", options={"accuracy": 0.3}, samples=3),
        "hint": NamedTeacherConfig(name="hint", backend="dummy", options={"accuracy": 0.0}, samples=2,
                                   route=RouteConfig(field="source", values=["book"])),
    }
    return [table[n] for n in order]


def run_generate(root: Path, cfgs, cache: Path, **gen):
    """The generate stage on the shared problems with fresh counting backends; (manifest, backends)."""
    layout = Layout(root)
    if not layout.train_problems.exists():
        io.write_jsonl(layout.train_problems, SUMS + BOOK)
    backends = {"prog": ProgramBackend(), "guess": DummyBackend(accuracy=0.3), "hint": DummyBackend(accuracy=0.0)}
    r = recipe(teacher=cfgs, generate=GenerateConfig(cache_dir=str(cache), **{"samples": 5, **gen}))
    with BackendPool() as pool:
        for c in cfgs:
            pool.add(c, backends[c.name])
        m = generate.run(r, layout, pool=pool)
    return m, backends, r


def traces_of(root: Path) -> list[Trace]:
    return io.read_records(Layout(root).traces, Trace)


def test_routing_and_counts_give_exactly_the_expected_traces(tmp_path):
    m, backends, _ = run_generate(tmp_path / "run", teachers(), tmp_path / "cache")
    traces = traces_of(tmp_path / "run")
    by = {name: {t.id for t in traces if t.teacher == name} for name in ("prog", "guess", "hint")}
    assert by["prog"] == {f"{p.id}/prog/s0" for p in SUMS}  # routed by task, 1 sample, always right: no STaR
    assert by["hint"] == {f"{p.id}/hint/{k}" for p in BOOK for k in ("s0", "s1", "h2")}  # STaR after 2 wrong
    unsolved = {p.id for p in SUMS + BOOK
                if not any(t.answer_text == p.answer for t in traces if t.problem_id == p.id
                           and t.teacher == "guess" and not t.hinted)}
    assert 0 < len(unsolved) < 7  # the dummy at 0.3 solves some, not all
    assert by["guess"] == ({f"{p.id}/guess/s{i}" for p in SUMS + BOOK for i in range(3)}
                           | {f"{pid}/guess/h3" for pid in unsolved})  # its STaR only for what IT failed
    assert len(traces) == sum(map(len, by.values()))
    per = m["outputs"]["teachers"]
    assert list(per) == ["prog", "guess", "hint"]
    assert {n: (per[n]["n_problems"], per[n]["n_traces"], per[n]["n_hinted"]) for n in per} == {
        "prog": (4, 4, 0), "guess": (7, 21 + len(unsolved), len(unsolved)), "hint": (3, 9, 3)}
    assert {n: b.calls for n, b in backends.items() if n != "prog"} == {"guess": per["guess"]["n_traces"],
                                                                          "hint": 9}
    assert m["outputs"]["teacher_calls"] == len(traces) and m["outputs"]["teacher"] == "prog, guess, hint"


def test_rerun_and_reordering_reuse_every_sample(tmp_path):
    cache = tmp_path / "cache"
    run_generate(tmp_path / "a", teachers(), cache)
    first = {t.id: t for t in traces_of(tmp_path / "a")}

    m, backends, _ = run_generate(tmp_path / "b", teachers(("hint", "prog", "guess")), cache)
    assert sum(b.calls for n, b in backends.items() if n != "prog") == 0
    assert m["outputs"]["teacher_calls"] == 0 and m["outputs"]["cached_teacher_calls"] == len(first)
    again = traces_of(tmp_path / "b")
    assert {t.id: t for t in again} == first  # the same samples, now in the new list order
    assert [t.teacher for t in again][0] == "hint"

    # a teacher's own sample count changes only its calls: one more sample per problem for guess
    # (plus its STaR samples, whose index follows its sample count)
    more = teachers()
    more[1].samples = 4
    m, backends, _ = run_generate(tmp_path / "c", more, cache)
    guess = m["outputs"]["teachers"]["guess"]
    assert guess["teacher_calls"] == backends["guess"].calls == 7 + guess["n_hinted"]
    assert guess["cached_teacher_calls"] == 21
    assert m["outputs"]["teachers"]["hint"]["teacher_calls"] == backends["hint"].calls == 0


def test_two_teachers_on_one_model_never_share_samples(tmp_path):
    """Same backend config, two names: one loaded backend, two cache identities, both pay."""
    cfgs = [NamedTeacherConfig(name="a", backend="dummy", options={"accuracy": 0.5}, samples=2),
            NamedTeacherConfig(name="b", backend="dummy", options={"accuracy": 0.5}, samples=2)]
    layout = Layout(tmp_path / "run")
    io.write_jsonl(layout.train_problems, BOOK)
    shared = DummyBackend(accuracy=0.5)
    with BackendPool() as pool:
        pool.add(cfgs[0], shared)
        assert pool.get(cfgs[1]) is shared
        m = generate.run(recipe(teacher=cfgs, generate=GenerateConfig(rationalize=False,
                                                                      cache_dir=str(tmp_path / "cache"))),
                         layout, pool=pool)
    assert shared.calls == 12 and m["outputs"]["cached_teacher_calls"] == 0
    ids = m["outputs"]["teachers"]
    assert ids["a"]["teacher_identity"] != ids["b"]["teacher_identity"]


def test_single_teacher_form_is_unchanged(tmp_path):
    """The mapping form keeps the backend's name in traces and its identity in the cache."""
    from reasondistill.config import BackendConfig

    layout = Layout(tmp_path / "run")
    io.write_jsonl(layout.train_problems, BOOK)
    r = recipe(teacher=BackendConfig(backend="dummy"), generate=GenerateConfig(samples=2, rationalize=False,
                                                                             cache_dir=str(tmp_path / "cache")))
    m = generate.run(r, layout)
    assert {t.teacher for t in traces_of(tmp_path / "run")} == {"dummy"} and "teachers" not in m["outputs"]
    assert m["outputs"]["teacher_identity"] == "dummy:acc=0.5"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        __import__("hashlib").sha256(b"dummy:acc=0.5").hexdigest()[:16] + ".jsonl"]


def _verified_and_curated(tmp_path, teachers_cfg: TeachersConfig):
    root = tmp_path / "run"
    _, _, r = run_generate(root, teachers(), tmp_path / "cache")
    r.curate = CurateConfig(max_per_problem=10, teachers=teachers_cfg)
    verify.run(r, Layout(root))
    m = curate.run(r, Layout(root))
    kept = [json.loads(line)["meta"] for line in Layout(root).curated.read_text().splitlines()]
    return root, m, kept


def test_curate_best_teacher_on_real_multi_teacher_output(tmp_path):
    root, m, kept = _verified_and_curated(tmp_path, TeachersConfig(best=True))
    teachers_per_problem: dict[str, set[str]] = {}
    for meta in kept:
        teachers_per_problem.setdefault(meta["problem_id"], set()).add(meta["teacher"])
    assert all(len(v) == 1 for v in teachers_per_problem.values())
    assert all(teachers_per_problem[p.id] == {"prog"} for p in SUMS)  # 100% beats the dummy's rate
    assert m["outputs"]["counts"]["dropped"]["not_best_teacher"] > 0
    chosen = m["outputs"]["policy_reports"]["not_best_teacher"]["problems_per_teacher"]
    assert chosen["prog"] == 4 and sum(chosen.values()) == len(teachers_per_problem)


def test_curate_teacher_quota_on_real_multi_teacher_output(tmp_path):
    root, _, kept = _verified_and_curated(tmp_path, TeachersConfig(quota={"guess": 1, "*": 0}))
    assert kept and {m["teacher"] for m in kept} == {"guess"}
    per_problem = [m["problem_id"] for m in kept]
    assert len(per_problem) == len(set(per_problem))  # at most one guess trace per problem


def test_report_has_a_row_per_teacher(tmp_path):
    root, _, kept = _verified_and_curated(tmp_path, TeachersConfig())
    traces = traces_of(root)
    report = build_report(root, task="mix", teacher_calls=0, cached_teacher_calls=0, wall_seconds=0.0)
    rows = {t["name"]: t for t in report["teachers"]}
    assert list(rows) == ["prog", "guess", "hint"]
    assert rows["prog"]["pass_rate"] == 1.0 and rows["prog"]["graded"] == 4 and rows["prog"]["ci95"][1] == 1.0
    assert rows["hint"]["pass_rate"] == 0.0 and rows["hint"]["hinted"] == 3 and rows["hint"]["graded"] == 6
    g = rows["guess"]
    guess_ok = sum(t.answer_text == next(p.answer for p in SUMS + BOOK if p.id == t.problem_id)
                   for t in traces if t.teacher == "guess" and not t.hinted)
    assert (g["passed"], g["graded"]) == (guess_ok, 21) and g["ci95"][0] < g["pass_rate"] < g["ci95"][1]
    assert g["mean_tokens"] == pytest.approx(
        sum(t.usage["completion_tokens"] for t in traces if t.teacher == "guess") / g["traces"])
    assert sum(r["kept"] for r in rows.values()) == len(kept)
    assert rows["prog"]["kept"] == sum(m["teacher"] == "prog" for m in kept) > 0
    write_report(root, report, ["md", "html"])
    md = (root / "report.md").read_text()
    assert "## Teachers" in md and "| prog | 4 | 0 | 100.0% (4/4) |" in md
    assert "<h2>Teachers</h2>" in (root / "report.html").read_text()
    assert "prog: program, guess: dummy, hint: dummy" in md and "1/3/2 sample(s) per problem" in md  # lineage


def test_teacher_evaluation_uses_the_first_teacher(tmp_path):
    layout = Layout(tmp_path / "run")
    io.write_jsonl(layout.eval_problems, SUMS)
    r = recipe(teacher=teachers(("prog", "guess")), eval=EvalConfig(models=["teacher"]),
               generate=GenerateConfig(cache_dir=str(tmp_path / "cache")))
    with BackendPool() as pool:
        m = evaluate.run(r, layout, pool=pool)["teacher"]
    assert m["outputs"]["accuracy"] == 1.0 and m["config"]["identity"] == "program:v1#teacher=prog"



def test_compare_and_loop_name_the_teachers_of_a_list(tmp_path):
    from reasondistill import compare, loop

    layout = Layout(tmp_path / "run")
    io.write_jsonl(layout.eval_problems, SUMS)
    r = recipe(teacher=[teachers(("guess",))[0], teachers(("prog",))[0]], eval=EvalConfig(models=["teacher"]),
               generate=GenerateConfig(cache_dir=str(tmp_path / "cache")))
    row = compare.evaluate_teacher(r, layout)  # the compare's (teacher) row: the first listed teacher
    assert row["model"] == "dummy" and row["accuracy"] < 1  # the dummy, not the program (which solves every sum)
    assert loop.teacher_label(r) == "guess=dummy, prog=program"
    assert loop.teacher_label(recipe(teacher=BackendConfig(backend="transformers", model="m"))) == "m"


@pytest.mark.parametrize("data,msg", [
    ({"teacher": [{"name": "a"}, {"name": "a", "backend": "dummy"}]}, "teacher[1].name 'a' is used twice"),
    ({"teacher": [{"backend": "dummy"}]}, "teacher[0].name is required in a teacher list"),
    ({"teacher": [{"name": "x/y"}]}, "teacher[0].name is required"),
    ({"teacher": [{"name": "a", "route": {"field": "colour", "values": ["red"]}}]},
     "teacher.a.route.field = 'colour' is not a problem field"),
    ({"teacher": [{"name": "a", "route": {"field": "task"}}]}, "teacher.a.route.values must be a non-empty list"),
    ({"teacher": [{"name": "a", "route": {"values": ["x"]}}]}, "teacher.a.route.values needs route.field"),
    ({"teacher": [{"name": "a", "samples": 0}]}, "teacher.a.samples must be >= 1"),
    ({"teacher": [{"name": "a", "sample": 2}]}, "unknown recipe key 'teacher.a.sample'; did you mean 'samples'"),
    ({"teacher": []}, "teacher: expected a mapping or a non-empty list"),
    ({"teacher": {"name": "a"}}, "unknown recipe key 'teacher.name'"),  # a name is for list entries only
])
def test_bad_teacher_lists_are_named(data, msg):
    from reasondistill.config import Recipe
    from reasondistill.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        build(Recipe, data)
    assert msg in str(e.value)


def test_list_entries_are_overridden_by_name(tmp_path):
    from reasondistill.config import dump_recipe, load_recipe
    from reasondistill.errors import ConfigError

    path = tmp_path / "r.yaml"
    path.write_text(dump_recipe(recipe(teacher=teachers())))
    r = load_recipe(path, ["teacher.guess.samples=7", "teacher.hint.model=set #2.gguf",
                           "teacher.prog.route.values=[chain_sum, leg_counting]"])
    assert [(t.name, t.samples) for t in r.teacher] == [("prog", 1), ("guess", 7), ("hint", 2)]
    assert r.teacher[2].model == "set #2.gguf" and r.teacher[0].route.values == ["chain_sum", "leg_counting"]
    with pytest.raises(ConfigError, match=r"^override 'teacher.prog.route.field=colour': teacher.prog.route.field"):
        load_recipe(path, ["teacher.prog.route.field=colour"])  # the error names what the user typed
    with pytest.raises(ConfigError, match=r"^override 'teacher.guess.sample=2': unknown recipe key 'teacher.guess"):
        load_recipe(path, ["teacher.guess.sample=2"])
    with pytest.raises(ConfigError, match="no list entry named 'nope'"):
        load_recipe(path, ["teacher.nope.samples=2"])
    with pytest.raises(ConfigError, match=r"address a field of one by name: teacher.<name>.model"):
        load_recipe(path, ["teacher.model=x"])
    assert load_recipe("default", ["teacher.model=set #2.gguf"]).teacher.model == "set #2.gguf"  # single form


RECIPE = """
name: two-teachers
problems: {source: reasoning_gym, task: chain_sum, n_train: 6, n_eval: 3,
           task_config: {min_terms: 2, max_terms: 3, min_digits: 1, max_digits: 2}}
teacher:
  - {name: solver, backend: program, samples: 1}
  - {name: guesser, backend: dummy, options: {accuracy: 0.3}, route: {field: task, values: [chain_sum]}}
generate: {samples: 3, rationalize: false}
curate: {teachers: {best: true}}
"""


def test_cli_runs_a_teacher_list_through_curation(tmp_path, capsys):
    """The whole path a user takes: YAML list, a by-name override, --until curate; the run folder's
    saved recipe reloads as the same teacher list."""
    from reasondistill.cli import main
    from reasondistill.config import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    out = tmp_path / "run"
    rc = main(["run", str(path), "--out", str(out), "--until", "curate", "teacher.guesser.samples=2",
               f"generate.cache_dir={tmp_path / 'cache'}"])
    assert rc == 0, capsys.readouterr().err
    m = json.loads(Layout(out).manifest("generate").read_text())["outputs"]["teachers"]
    assert {n: m[n]["n_traces"] for n in m} == {"solver": 6, "guesser": 12}
    assert {t.teacher for t in traces_of(out)} == {"solver", "guesser"}
    kept = {json.loads(line)["meta"]["teacher"] for line in Layout(out).curated.read_text().splitlines()}
    assert kept == {"solver"}  # always right: the best teacher of every problem
    saved = load_recipe(Layout(out).recipe_file)
    assert [(t.name, t.samples, t.route.values) for t in saved.teacher] == [
        ("solver", 1, []), ("guesser", 2, ["chain_sum"])]
