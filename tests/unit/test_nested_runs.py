"""Nested run layouts (a loop round, a compare entry), the stage table's contract, and the typed
results at the seams (``StageManifest``, ``EvalSummary``), old spellings on disk included."""

import json
import re
from pathlib import Path

import pytest

from reasondistill import io, pipeline
from reasondistill.errors import InputError
from reasondistill.layout import Layout, run_folder
from reasondistill.metrics import summarize
from reasondistill.records import EvalSample, EvalSummary, StageManifest

SRC = Path(__file__).resolve().parents[2] / "src" / "reasondistill"


def test_a_loop_round_is_a_run_layout_on_its_picked_problems():
    loop = Layout(Path("L"))
    r2 = loop.round(2)
    assert r2.root == Path("L/round-2")
    assert r2.train_problems == Path("L/round-2/pick/picked.jsonl")  # what its student picked
    assert r2.eval_problems == Path("L/problems/eval.jsonl")  # the loop's held-out problems
    assert r2.eval_dir("pick") == Path("L/round-2/pick")  # the student's sampled answers sit beside them
    assert (r2.curated, r2.union) == (Path("L/round-2/curate/train.jsonl"), Path("L/round-2/data/train.jsonl"))
    assert (r2.checkpoint, r2.round_json) == (Path("L/round-2/train/model"), Path("L/round-2/round.json"))
    assert r2.eval_file("student_after", "summary") == Path("L/round-2/eval/student_after/summary.json")


def test_a_compare_entry_is_a_run_layout_per_training_seed():
    run = Layout(Path("R"))
    first, second = run.entry("sft"), run.entry("sft", 1)
    # the folders compare wrote before the layouts were nested: finished entries are found again
    assert first.checkpoint == Path("R/compare/entries/sft/train/model")
    assert second.checkpoint == Path("R/compare/entries/sft/seed-1/train/model")
    assert second.eval_dir("sft") == Path("R/compare/entries/sft/seed-1/eval")
    assert second.stats_json == Path("R/compare/entries/sft/seed-1/stats.json")
    assert second.loop().root == Path("R/compare/entries/sft/seed-1/loop")
    # the data stages are the run's, unless the entry curates on its own (shared by its seeds)
    assert (second.traces, second.curated) == (run.traces, run.curated)
    own = run.entry("short", 2, own_curation=True)
    assert own.curated == Path("R/compare/entries/short/curate/train.jsonl")
    assert own.pairs == Path("R/compare/entries/short/pairs/pairs.jsonl")
    assert own.traces == run.traces and own.train_problems == run.train_problems
    models = run.compare_models()
    assert models.eval_dir("teacher") == Path("R/compare/teacher")
    assert models.eval_dir("student_before") == Path("R/compare/student_before")
    assert run_folder("tiny") == Path("runs/tiny") and run_folder("tiny", "elsewhere") == Path("elsewhere/tiny")


def test_no_run_folder_path_is_spelled_outside_layout():
    spelled = re.compile(r"""["'](round-|pick["'/]|entries["'/]|teacher\.json|stats\.json)|Path\(["']runs""")
    found = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py") if path.name != "layout.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if spelled.search(line) and not line.lstrip().startswith(("#", "help=", '"', "'"))]
    assert found == []


def test_manifests_read_the_same_facts_under_both_spellings():
    generate = {"stage": "generate", "wall_seconds": 3.5, "peak_rss_mb": 120.0,
                "outputs": {"n_traces": 8, "teacher_calls": 6, "cached_teacher_calls": 2}}
    evaluate = {"stage": "evaluate", "wall_seconds": 1.0, "outputs": {"n": 4, "calls": 3, "cached": 1}}
    g, e = StageManifest.of(generate), StageManifest.of(evaluate)
    assert (g.calls, g.cached_calls, g.wall_seconds, g.peak_rss_mb) == (6, 2, 3.5, 120.0)
    assert (e.calls, e.cached_calls, e.peak_rss_mb) == (3, 1, None)
    assert g.spent() == (6, 2) and not g.skipped
    # reused: nothing was asked in this invocation, everything it holds was served
    reused = StageManifest.of({**generate, "this_run": {"skipped": True}})
    assert reused.skipped and reused.spent() == (0, 8)
    verify = StageManifest.of({"stage": "verify", "outputs": {"n": 8}, "this_run": {"skipped": True}})
    assert verify.calls is None and verify.spent() == (0, 0)  # a stage that asks no model spent no calls


def _samples(model, passed):
    return [EvalSample(f"p{i}", model, 0, float(ok), ok, "1" if ok else None, ok, 5 + i, "x")
            for i, ok in enumerate(passed)]


def test_a_summary_reads_and_writes_byte_identically(tmp_path):
    data = {**summarize(_samples("student_after", [True, False, True]), "student_after"), "n_errors": 0,
            "settings": {"eval": {"max_new_tokens": 4}}, "audit": {"disagreements": 0}}
    path = tmp_path / "summary.json"
    io.write_json(path, data)
    before = path.read_bytes()
    summary = io.read_summary(path)
    assert (summary.model, summary.n, summary.accuracy) == ("student_after", 3, pytest.approx(2 / 3))
    assert summary.extra["audit"] == {"disagreements": 0} and summary.ci95 == data["ci95"]
    io.write_json(path, summary.to_json())
    assert path.read_bytes() == before
    # an older summary without the later fields still reads; a file that is none is refused by name
    old = EvalSummary.from_json({"model": "teacher", "n": 2, "accuracy": 0.5, "ci95": [0.1, 0.9]})
    assert old.mean_tokens == 0.0 and old.extra == {}
    path.write_text(json.dumps({"n": 2}))
    with pytest.raises(InputError, match="summary.json.*not an evaluation summary"):
        io.read_summary(path)


# -- the stage table: what a run does is in the rows, not in branches on stage names

def _made(recipe, layout):
    return {"stage": "toy", "outputs": {"n_traces": 5, "teacher_calls": 4, "cached_teacher_calls": 1},
            "this_run": {"skipped": False}}


def _other(recipe, layout):
    return {"stage": "other", "outputs": {"n": 9, "calls": 9, "cached": 0}, "this_run": {"skipped": False}}


SEEN: list = []


def _summing(recipe, layout, *, this_run):
    SEEN.append(this_run)
    return {"written": True}


def _refuse(recipe, layout, result):
    raise InputError(f"checked {result.stage}: {result.calls} calls")


def test_run_stages_adds_up_the_rows_teacher_calls_and_runs_their_checks(tmp_path):
    here = __name__
    stages = (pipeline.Stage("made", f"{here}:_made", teacher_calls=StageManifest.spent),
              pipeline.Stage("other", f"{here}:_other"),  # its calls are not the teacher's
              pipeline.Stage("sum", f"{here}:_summing", spent=True))
    SEEN.clear()
    results = pipeline.run_stages(stages, None, Layout(tmp_path), pool=None)
    assert list(results) == ["made", "other", "sum"] and results["sum"].outputs == {"written": True}
    assert (SEEN[0]["teacher_calls"], SEEN[0]["cached_teacher_calls"]) == (4, 1)
    pipeline.run_stages(stages, None, Layout(tmp_path), pool=None, account=False)  # a loop round's report
    assert SEEN[1] is None
    checked = (pipeline.Stage("made", f"{here}:_made", check=_refuse),)
    with pytest.raises(InputError, match="checked toy: 4 calls"):
        pipeline.run_stages(checked, None, Layout(tmp_path), pool=None)
    assert pipeline.run_stages(checked, None, Layout(tmp_path), pool=None, checks=False)["made"].calls == 4
