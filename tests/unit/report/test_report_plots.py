"""The report's plots, lineage and cost: a self-contained page whose every plot either draws from
the run folder or says which file it lacks, and the run's own cost shown apart from what the
latest invocation spent."""

import base64
import json
import re

import pytest

from reasondistill import report as report_stage
from reasondistill.config import Recipe
from reasondistill.io import write_json, write_jsonl
from reasondistill.layout import Layout
from reasondistill.metrics import summarize
from reasondistill.records import EvalSample, Trace, TrainExample
from reasondistill.report import build_report, write_report

KW = dict(task="chain_sum", teacher_calls=0, cached_teacher_calls=640, wall_seconds=0.1)
TITLES = ("Accuracy with 95% intervals", "Accuracy vs tokens per answer", "Trace length before and after curation",
          "Problem difficulty (teacher pass rate per problem)", "Training curves")


def _manifest(stage, config, outputs, wall, rss=None, **extra):
    m = {"stage": stage, "config": config, "inputs": {}, "outputs": outputs, "wall_seconds": wall,
         "versions": {"python": "3.11"}, **extra}
    if rss is not None:
        m["peak_rss_mb"] = rss
    return m


def full_run(tmp_path):
    """A run folder as the pipeline writes it, with every file the plots read."""
    layout = Layout(tmp_path / "run")
    for model, k, tokens in (("teacher", 18, 40), ("student_before", 4, 90), ("student_after", 12, 55)):
        samples = [EvalSample(f"e{i}", model, 0, float(i < k), i < k, "1", True, tokens + i % 5, "Answer: 1")
                   for i in range(20)]
        write_jsonl(layout.eval_file(model, "samples"), samples)
        write_json(layout.eval_file(model, "summary"), summarize(samples, model))
        write_json(layout.eval_dir(model) / "manifest.json", _manifest(
            "evaluate", {"model": model}, {"n": 20, **({"calls": 20, "cached": 0} if model == "teacher" else {})},
            wall=30.0, rss=900.0))
    traces = [Trace(f"t{i}/s{j}", f"t{i}", "smollm2", j, "r", "1", "r\nAnswer: 1", "stop",
                    usage={"prompt_tokens": 10, "completion_tokens": 20 + 7 * i + j}, hinted=j == 2)
              for i in range(30) for j in range(3)]
    write_jsonl(layout.traces, traces)
    write_jsonl(layout.curated, [
        TrainExample([{"role": "user", "content": "q"}], [{"role": "assistant", "content": t.raw}],
                     {"problem_id": t.problem_id, "trace_id": t.id, "teacher": t.teacher, "hinted": t.hinted})
        for t in traces[::4]])
    write_jsonl(layout.pass_rates, [
        {"problem_id": f"t{i}", "n": 2, "n_correct": i % 3, "pass_rate": (i % 3) / 2 if i % 3 < 3 else None,
         "difficulty": None} for i in range(30)] + [{"problem_id": "x", "n": 0, "n_correct": 0, "pass_rate": None}])
    write_jsonl(layout.loss_log, [{"loss": 2.0 - 0.1 * s, "grad_norm": 1.0, "learning_rate": 1e-4, "step": s}
                                  for s in range(1, 11)])
    write_json(layout.manifest("problems"), _manifest(
        "problems", {"source": "reasoning_gym", "task": "chain_sum", "seed": 0}, {"n_train": 30, "n_eval": 20},
        wall=2.0, rss=300.0))
    write_json(layout.manifest("generate"), _manifest(
        "generate", {"teacher": {"backend": "transformers", "model": "smollm2-135m-instruct"},
                     "generate": {"samples": 2, "temperature": 0.7, "rationalize": True}},
        {"n_traces": 90, "n_hinted": 30, "teacher_calls": 600, "cached_teacher_calls": 40, "teacher": "smollm2",
         "teacher_identity": "transformers:smollm2@abc"}, wall=400.0, rss=2100.0))
    write_json(layout.manifest("curate"), _manifest(
        "curate", {"curate": {"max_per_problem": 2}},
        {"files": ["train.jsonl"], "counts": {"traces": 90, "kept": 23, "negatives": 40, "rejected": 27,
                                              "dropped": {"truncated": 20, "duplicate": 7}},
         "policies": ["errored", "truncated", "correct", "duplicate", "over_cap"]}, wall=1.0, rss=310.0))
    write_json(layout.manifest("train"), _manifest(
        "train", {"method": "sft", "student": "smollm2-135m-instruct", "lora": False, "max_steps": 10,
                  "learning_rate": 1e-4},
        {"model_dir": str(layout.checkpoint), "steps": 10, "train_loss": 1.5, "n_examples": 23},
        wall=200.0, rss=3500.0))
    return layout


def _pngs(page):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_every_plot_drawn_inline_and_the_page_is_self_contained(tmp_path):
    layout = full_run(tmp_path)
    write_report(layout.root, build_report(layout.root, **KW), ["html"])
    page = layout.report_html.read_text()
    pngs = _pngs(page)
    assert len(pngs) == 5 and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    for title in TITLES:
        assert f"<figcaption>{title}</figcaption>" in page
    # opens offline: nothing is fetched from anywhere
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(?:link|script|iframe|object|embed)\b", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_each_plot_degrades_to_a_note_naming_what_is_missing(tmp_path):
    run_dir = tmp_path / "run"
    samples = [EvalSample(f"e{i}", "student_after", 0, 1.0, True, "1", True, 5, "Answer: 1") for i in range(4)]
    write_json(Layout(run_dir).eval_file("student_after", "summary"), summarize(samples, "student_after"))
    write_report(run_dir, build_report(run_dir, **KW), ["html"])
    page = (run_dir / "report.html").read_text()
    assert len(_pngs(page)) == 2  # accuracy and accuracy vs tokens, from the one summary
    assert "no teacher traces (generate/traces.jsonl not found)" in page
    assert "no pass rates (curate/pass_rates.jsonl not found)" in page
    assert "no training log (train/loss.jsonl not found)" in page

    layout = Layout(run_dir)
    write_jsonl(layout.loss_log, [])
    write_jsonl(layout.pass_rates, [{"problem_id": "a", "n": 0, "n_correct": 0, "pass_rate": None}])
    write_report(run_dir, build_report(run_dir, **KW), ["html"])
    page = (run_dir / "report.html").read_text()
    assert "the training log is empty" in page and "no problem has unhinted teacher samples" in page

    empty = tmp_path / "empty"
    write_report(empty, build_report(empty, **KW), ["html"])
    page = (empty / "report.html").read_text()
    assert not _pngs(page) and "no evaluation summaries (eval/&lt;model&gt;/summary.json)" in page


def test_trace_lengths_in_tokens_before_and_after_curation(tmp_path):
    from reasondistill.report import data
    layout = full_run(tmp_path)
    (unit, before, after), note = data.trace_lengths(layout)
    assert unit == "tokens" and note == ""
    assert len(before) == 90 and len(after) == 23 and after[0] == 20 and after[1] == 20 + 7 + 1
    # a trace without token counts: every length falls back to characters
    rows = [json.loads(line) for line in layout.traces.read_text().splitlines()]
    rows[0]["usage"] = {}
    write_jsonl(layout.traces, rows)
    (unit, before, after), _ = data.trace_lengths(layout)
    assert unit == "characters" and before[0] == len("r\nAnswer: 1") == after[0]
    (rates, unknown), _ = data.pass_rates(layout)
    assert len(rates) == 30 and unknown == 1


def test_run_cost_and_this_invocation_both_shown(tmp_path):
    """After an unchanged re-run, the report shows the run's own cost next to the 0.1 s the re-run took."""
    layout = full_run(tmp_path)
    recipe = Recipe()
    spent = {"teacher_calls": 0, "cached_teacher_calls": 640, "wall_seconds": 0.1, "peak_rss_mb": 250.0}
    r = report_stage.run(recipe, layout, this_run=spent)
    # the contract fields keep meaning what this invocation spent
    assert (r["teacher_calls"], r["cached_teacher_calls"], r["wall_seconds"]) == (0, 640, 0.1)
    assert r["this_run"] == spent
    assert r["run_cost"] == {"wall_seconds": 693.0, "teacher_calls": 620, "cached_teacher_calls": 40,
                             "peak_rss_mb": 3500.0}
    md = layout.report_md.read_text()
    assert ("- Run cost (all stages, as recorded when each ran): wall time 11.6 min, teacher calls 620 "
            "(40 served from the sample cache), peak memory 3.4 GB") in md
    assert ("- This invocation: wall time 0.1 s, teacher calls 0 (640 reused from the cache or from finished "
            "stages), peak memory 250 MB") in md
    page = layout.report_html.read_text()
    assert "Run cost (all stages, as recorded when each ran): wall time 11.6 min" in page
    assert "This invocation: wall time 0.1 s, teacher calls 0 (640 reused" in page

    r = report_stage.run(recipe, layout)  # `reasondistill report RUN_DIR` alone
    assert r["run_cost"]["wall_seconds"] == 693.0
    assert "This invocation: the report alone was rewritten from the run folder (no stage ran)" in \
        layout.report_md.read_text()


def test_lineage_from_the_manifests(tmp_path):
    layout = full_run(tmp_path)
    r = build_report(layout.root, **KW)
    lin = r["lineage"]
    assert lin["problems"] == {"source": "reasoning_gym", "task": "chain_sum", "seed": 0, "n_train": 30, "n_eval": 20}
    assert lin["teacher"]["teacher_identity"] == "transformers:smollm2@abc" and lin["teacher"]["samples"] == 2
    assert lin["filters"]["policies"] == ["errored", "truncated", "correct", "duplicate", "over_cap"]
    assert lin["filters"]["dropped"] == {"truncated": 20, "duplicate": 7} and lin["filters"]["kept"] == 23
    assert lin["objective"]["method"] == "sft" and lin["objective"]["steps"] == 10
    assert lin["checkpoint"] == "train/model"  # relative to the run folder, where the report is
    assert lin["score"]["accuracy"] == pytest.approx(0.6) and lin["verify"] is None and lin["pairs"] is None
    json.dumps(r)
    write_report(layout.root, r, ["md", "html"])
    md = layout.report_md.read_text()
    assert "| filters | errored > truncated > correct > duplicate > over_cap: kept 23 of 90 traces (40 negatives); " \
           "dropped: truncated 20, duplicate 7 |" in md
    assert "| objective | sft on smollm2-135m-instruct: 10 steps, learning rate 0.0001, 23 examples, final train " \
           "loss 1.5 |" in md
    assert "| score | student (after) accuracy 60.0% [" in md and "+40.0 pts over the student before" in md
    page = layout.report_html.read_text()
    assert "<h2>Lineage</h2>" in page and "<td>teacher</td><td>transformers smollm2-135m-instruct " in page
