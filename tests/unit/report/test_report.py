import base64
import json
import re

import pytest

from reasondistill.config import ReportConfig
from reasondistill.errors import InputError
from reasondistill.metrics import summarize
from reasondistill.io import write_json, write_jsonl
from reasondistill.records import EvalSample, TrainExample
from reasondistill.report import build_report, run_dir_report, write_report
from reasondistill.report import plots

KW = dict(task="chain_sum", teacher_calls=120, cached_teacher_calls=40, wall_seconds=93.5)

EVIL = '<script>alert("x")</script> & done'


def _samples(model, n, n_pass, *, text="Answer: 1", sampled=0):
    out = []
    for i in range(n):
        passed = i < n_pass
        out.append(EvalSample(f"p{i}", model, 0, float(passed), passed, "1" if passed else "2", True, 12 + i,
                              text, "stop"))
        for j in range(1, sampled + 1):
            out.append(EvalSample(f"p{i}", model, j, float(passed), passed, "1", True, 10, text))
    return out


def _manifest(stage, outputs, wall=1.5):
    return {"stage": stage, "config": {}, "inputs": {}, "outputs": outputs, "wall_seconds": wall,
            "versions": {"python": "3.11.2", "reasondistill": "0.1.0"}}


def make_run(tmp_path, *, models=("teacher", "student_before", "student_after"), stages=True):
    run_dir = tmp_path / "run"
    accs = {"teacher": 18, "student_before": 2, "student_after": 12}
    for m in models:
        text = EVIL if m == "student_after" else "Answer: 1"
        samples = _samples(m, 20, accs[m], text=text, sampled=2 if m == "teacher" else 0)
        write_jsonl(run_dir / "eval" / m / "samples.jsonl", samples)
        write_json(run_dir / "eval" / m / "summary.json", summarize(samples, m))
    if stages:
        write_json(run_dir / "problems" / "manifest.json", _manifest("problems", {"n_train": 40, "n_eval": 20}))
        write_json(run_dir / "generate" / "manifest.json", _manifest("generate", {"traces": 160}, wall=30.0))
        write_json(run_dir / "curate" / "manifest.json", _manifest(
            "curate", {"files": ["train.jsonl"], "kept": 70, "rejected": {"wrong_answer": 80, "truncated": 10},
                       "note": "text is skipped"}))
        write_jsonl(run_dir / "problems" / "eval.jsonl", [
            {"id": f"p{i}", "source": "t", "prompt": f"What is {i} <b>+</b> 1?", "answer": str(i + 1), "meta": {}}
            for i in range(20)])
        write_jsonl(run_dir / "curate" / "train.jsonl", [
            TrainExample([{"role": "user", "content": f"Q{i} <i>x</i>"}],
                         [{"role": "assistant", "content": f"Because ... Answer: {i}"}],
                         {"problem_id": f"t{i}", "hinted": i == 0}) for i in range(8)])
    return run_dir


def test_contract_keys_and_types(tmp_path):
    run_dir = make_run(tmp_path)
    r = build_report(run_dir, recipe_name="program-teacher", **KW)
    assert r["task"] == "chain_sum" and isinstance(r["task"], str)
    assert r["n_eval"] == 20 and isinstance(r["n_eval"], int)
    for m in ("teacher", "student_before", "student_after"):
        assert isinstance(r[m]["accuracy"], float) and 0.0 <= r[m]["accuracy"] <= 1.0
        lo, hi = r[m]["ci95"]
        assert isinstance(lo, float) and isinstance(hi, float) and lo <= r[m]["accuracy"] <= hi
    assert r["teacher"]["accuracy"] == pytest.approx(0.9)
    assert r["student_after"]["accuracy"] == pytest.approx(0.6)
    assert (r["teacher_calls"], r["cached_teacher_calls"]) == (120, 40)
    assert isinstance(r["teacher_calls"], int) and isinstance(r["wall_seconds"], float)
    # extras
    assert r["recipe"] == "program-teacher"
    assert r["improvement"] == pytest.approx(0.5)
    assert r["gap_recovered"] == pytest.approx((0.6 - 0.1) / (0.9 - 0.1))
    assert r["ci_overlap"] is False
    assert set(r["stages"]) == {"problems", "generate", "curate"}
    assert r["stages"]["generate"] == {"wall_seconds": 30.0, "outputs": {"traces": 160}}
    assert r["curation"] == {"kept": 70, "rejected": {"wrong_answer": 80, "truncated": 10}}
    assert r["versions"]["reasondistill"] == "0.1.0"
    assert "pass_at_k" in r["teacher"]
    json.dumps(r)


def test_missing_files_tolerated(tmp_path):
    run_dir = make_run(tmp_path, models=("student_after",), stages=False)
    r = build_report(run_dir, **KW)
    assert r["teacher"] is None and r["student_before"] is None
    assert r["n_eval"] == 20
    assert r["improvement"] is None and r["gap_recovered"] is None and r["ci_overlap"] is None
    assert r["stages"] == {} and r["curation"] == {} and r["versions"] == {}
    paths = write_report(run_dir, r, ["md", "html"])
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    assert "No curated training examples" in (run_dir / "report.html").read_text()

    empty = tmp_path / "empty"
    r = build_report(empty, **KW)
    assert r["n_eval"] == 0 and r["models"] == []
    write_report(empty, r, ["md", "html"])
    assert "No evaluation summaries" in (empty / "report.md").read_text()


def test_malformed_summary_raises(tmp_path):
    run_dir = make_run(tmp_path, stages=False)
    (run_dir / "eval" / "teacher" / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match="summary.json"):
        build_report(run_dir, **KW)


def test_ci_overlap_true(tmp_path):
    run_dir = tmp_path / "r"
    for m, k in (("student_before", 10), ("student_after", 11)):
        write_json(run_dir / "eval" / m / "summary.json", summarize(_samples(m, 20, k), m))
    assert build_report(run_dir, **KW)["ci_overlap"] is True


def test_write_json_roundtrip_and_md_table(tmp_path):
    run_dir = make_run(tmp_path)
    r = build_report(run_dir, **KW)
    paths = write_report(run_dir, r, ["md"])
    assert [p.name for p in paths] == ["report.json", "report.md"]
    assert not (run_dir / "report.html").exists()
    assert json.loads((run_dir / "report.json").read_text()) == json.loads(json.dumps(r))
    md = (run_dir / "report.md").read_text()
    assert "| model | accuracy | 95% CI | fallback credits | format rate | tokens/answer | n |" in md
    assert re.search(r"\| teacher \| 90\.0% \| \[\d+\.\d%, \d+\.\d%\] \| [^|]+ \| 100\.0% \|", md)
    assert "| student (after) | 60.0% |" in md
    assert "+50.0 pts" in md and "62.5%" in md  # improvement and gap recovered
    assert "| generate | 30.0 s |" in md
    assert "rejected: wrong_answer" in md and "pass@2" in md


def test_html_escapes_and_embeds_png(tmp_path):
    run_dir = make_run(tmp_path)
    r = build_report(run_dir, **KW)
    write_report(run_dir, r, ["html"])
    page = (run_dir / "report.html").read_text()
    assert "<script>" not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; done" in page
    assert "What is 3 &lt;b&gt;+&lt;/b&gt; 1?" in page  # problem prompt, escaped
    assert "Q0 &lt;i&gt;x&lt;/i&gt;" in page  # curated example, escaped
    assert page.count("<details>") == 20 + 5  # 20 held-out problems + 5 curated examples
    assert "http://" not in page and "https://" not in page and "<link" not in page  # self-contained
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m, "no inline PNG"
    assert base64.b64decode(m.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert "| model |" not in page and "<th>95% CI</th>" in page


def test_html_caps_problems_and_orders_disagreements_first(tmp_path):
    run_dir = tmp_path / "r"
    for m, k in (("student_before", 0), ("student_after", 3)):
        samples = _samples(m, 80, k)
        write_jsonl(run_dir / "eval" / m / "samples.jsonl", samples)
        write_json(run_dir / "eval" / m / "summary.json", summarize(samples, m))
    write_report(run_dir, build_report(run_dir, **KW), ["html"])
    page = (run_dir / "report.html").read_text()
    ids = re.findall(r"<details><summary><code>(p\d+)</code>", page)
    assert len(ids) == 50
    assert ids[:3] == ["p0", "p1", "p2"]  # the problems where before/after disagree


def test_html_without_matplotlib(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, stages=False)
    monkeypatch.setattr(plots, "_figure", lambda *a, **k: None)
    write_report(run_dir, build_report(run_dir, **KW), ["html"])
    page = (run_dir / "report.html").read_text()
    assert "data:image/png" not in page and "<table>" in page
    assert page.count("matplotlib is not installed: no plot") == 5  # every plot leaves a note


def test_plot_returns_none_when_matplotlib_missing(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert plots.accuracy_png({"teacher": {"accuracy": 0.5, "ci95": [0.4, 0.6]}, "n_eval": 10}) is None


def test_unknown_format_rejected(tmp_path):
    with pytest.raises(ValueError, match="pdf"):
        write_report(tmp_path, {"task": "t"}, ["pdf"])


def test_run_writes_configured_formats(tmp_path):
    run_dir = make_run(tmp_path)
    r = run_dir_report(ReportConfig(formats=["md"]), run_dir, recipe_name="x", **KW)
    assert r["recipe"] == "x"
    assert (run_dir / "report.json").exists() and (run_dir / "report.md").exists()
    assert not (run_dir / "report.html").exists()
    run_dir_report(ReportConfig(), run_dir, **KW)
    assert (run_dir / "report.html").exists()
