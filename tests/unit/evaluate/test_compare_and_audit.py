"""Settings-pinned scores (`evaluate --compare`) and the checker audit (`evaluate --audit`)."""

import hashlib
import json

import pytest

from reasondistill import cli, io
from reasondistill.evaluate import audit, settings
from reasondistill.records import EvalSample, Problem

PROBLEMS = [{"id": f"q{i}", "source": "test", "prompt": f"What is {i} + {i}?", "answer": str(2 * i)}
            for i in range(12)]


@pytest.fixture()
def problems(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


def evaluate(tmp_path, problems, out, *overrides):
    rc = cli.main(["evaluate", "--model", "teacher", "--problems", str(problems), "--out", str(tmp_path / out),
                   "teacher.backend=dummy", f"generate.cache_dir={tmp_path / 'cache'}", *overrides])
    assert rc == 0
    return tmp_path / out


def test_summary_records_its_settings(tmp_path, problems, capsys):
    out = evaluate(tmp_path, problems, "a", "eval.seeds=2", "eval.max_new_tokens=64")
    s = json.loads((out / "summary.json").read_text())["settings"]
    assert s["model"]["identity"] == "dummy:acc=0.5" and s["model"]["backend"] == "dummy"
    assert s["sampling"] == {"greedy": True, "temperature": 0.7, "top_p": 0.95, "seed": 0, "samples": 0,
                             "seeds": 2, "max_new_tokens": 64, "n": None}
    assert s["checker"]["picked"] == ["math"] and s["checker"]["math-verify_version"]
    assert len(s["problems"]["sha256"]) == 64 and s["problems"]["n"] == 12
    assert len(s["prompt"]["template_sha256"]) == 64
    assert {"torch", "transformers", "reasondistill"} <= set(s["libraries"])
    assert set(s["runtime"]) == {"device", "dtype"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass1_sampled"]["runs"] == 2 and summary["n_samples"] == 2


def test_compare_refuses_when_settings_differ_and_names_them(tmp_path, problems, capsys):
    a = evaluate(tmp_path, problems, "a")
    b = evaluate(tmp_path, problems, "b", "eval.max_new_tokens=50", "verify.fallback_last_number=false")
    capsys.readouterr()
    assert cli.main(["evaluate", "--compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "refusing to compare" in err and "2 setting(s) differ" in err
    assert "sampling.max_new_tokens: A = 192, B = 50" in err
    assert "checker.fallback_last_number: A = true, B = false" in err
    assert "model" not in err.split("besides the model")[1]  # the model itself is never a reason to refuse

    # one allowed, the other still refuses
    assert cli.main(["evaluate", "--compare", str(a), str(b), "--allow-different", "sampling"]) == 2
    err = capsys.readouterr().err
    assert "1 setting(s) differ" in err and "max_new_tokens" not in err

    assert cli.main(["evaluate", "--compare", str(a), str(b), "--allow-different", "sampling.max_new_tokens",
                     "checker"]) == 0
    assert "settings: the same except the model" in capsys.readouterr().out

    assert cli.main(["evaluate", "--compare", str(a), str(b), "--force"]) == 0
    out = capsys.readouterr().out
    assert "compared anyway (--force)" in out and "sampling.max_new_tokens: A = 192, B = 50" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["forced"] and {d["setting"] for d in result["settings_differ"]} == {
        "sampling.max_new_tokens", "checker.fallback_last_number"}

    assert cli.main(["evaluate", "--compare", str(a), str(b), "--allow-different", "sampling.max_tokens"]) == 2
    assert "no recorded setting named sampling.max_tokens" in capsys.readouterr().err


def test_compare_of_two_models_under_the_same_settings(tmp_path, problems, capsys):
    a = evaluate(tmp_path, problems, "weak", "teacher.options.accuracy=0.2")
    b = evaluate(tmp_path, problems, "strong", "teacher.options.accuracy=0.9")
    capsys.readouterr()
    assert cli.main(["evaluate", "--compare", str(a), str(b / "summary.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    d = result["difference"]
    assert result["a"]["identity"] != result["b"]["identity"] and not result["settings_differ"]
    assert d["paired"] and d["n"] == 12
    assert d["value"] == pytest.approx(sb["accuracy"] - sa["accuracy"])
    assert d["ci95"][0] <= d["value"] <= d["ci95"][1]
    assert "B - A: " in out and "paired bootstrap over 12 shared problems" in out


def test_settings_differences_ignore_the_model_and_path():
    base = {"model": {"identity": "x", "weights_sha256": "1"}, "problems": {"sha256": "h", "path": "/a"},
            "libraries": {"torch": "2.13"}, "runtime": {"dtype": "float32", "device": "cpu"}}
    other = {"model": {"identity": "y", "weights_sha256": "2"}, "problems": {"sha256": "h", "path": "/b"},
             "libraries": {"torch": "2.14"}, "runtime": {"dtype": "bfloat16", "device": "cpu"}}
    assert settings.differences(base, other) == [("libraries.torch", "2.13", "2.14"),
                                                 ("runtime.dtype", "float32", "bfloat16")]
    assert settings.differences(base, other, ["libraries", "runtime.dtype"]) == []
    assert settings.differences(base, {**other, "runtime": {"dtype": "float32"}}, ["libraries"]) == [
        ("runtime.device", "cpu", "<missing>")]


def test_weights_hash_is_cached_and_follows_content(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDISTILL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-1")
    first = settings.weights_sha256(str(folder))
    assert first and settings.weights_sha256(str(folder)) == first
    assert (tmp_path / "cache" / "weight_hashes.json").is_file()
    (folder / "model.safetensors").write_bytes(b"weights-2")  # same size, new content and mtime
    assert settings.weights_sha256(str(folder)) != first
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"gguf")
    assert settings.weights_sha256(str(gguf)) == hashlib.sha256(b"gguf").hexdigest()
    assert settings.weights_sha256("org/hub-model") is None


# --- audit -------------------------------------------------------------------------------------


def planted_eval(tmp_path):
    """An evaluation folder whose answers include a planted checker disagreement."""
    problems = [Problem("half", "t", "What is 1/2 as a decimal?", "0.5"), Problem("big", "t", "1000?", "1,000"),
                Problem("wrong", "t", "7?", "7"), Problem("nogold", "t", "?", "")]
    texts = {"half": "It is a half.\nAnswer: 1/2", "big": "Answer: 1000", "wrong": "Answer: 8", "nogold": "Answer: 3"}
    samples = [EvalSample(p.id, "m", 0, 1.0, True, None, True, 5, texts[p.id]) for p in problems]
    d = tmp_path / "eval"
    io.write_jsonl(tmp_path / "eval.jsonl", problems)
    io.write_jsonl(d / "samples.jsonl", samples)
    io.write_json(d / "summary.json", {"model": "m", "n": 4, "accuracy": 1.0, "ci95": [0.5, 1.0],
                                       "settings": {"problems": {"path": str(tmp_path / "eval.jsonl")}}})
    return problems, samples, d


def test_audit_lists_a_planted_disagreement(tmp_path):
    problems, samples, _ = planted_eval(tmp_path)
    rows, counts = audit.audit(problems, samples)
    assert [r["problem_id"] for r in rows] == ["half"]
    row = rows[0]
    assert row["gold"] == "0.5" and row["extracted"] == {"math": "1/2", "exact": "1/2"}
    assert row["math"] == {"passed": True, "reason": "correct"} and row["exact"] == {"passed": False, "reason": "wrong"}
    # "1,000" vs "1000": both checkers agree (the string match drops thousands commas); "8" vs "7": both wrong
    assert counts["n"] == 3 and counts["disagree"] == 1 and counts["agree"] == 2
    assert counts["math_only"] == 1 and counts["exact_only"] == 0


def test_audit_command_over_an_existing_folder(tmp_path, capsys):
    _, _, d = planted_eval(tmp_path)
    assert cli.main(["evaluate", "--audit", str(d)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["disagree"] == 1
    rows = [json.loads(line) for line in (d / "audit.jsonl").read_text().splitlines()]
    assert [(r["problem_id"], r["gold"], r["math"]["passed"], r["exact"]["passed"]) for r in rows] == [
        ("half", "0.5", True, False)]
    assert json.loads((d / "summary.json").read_text())["audit"]["disagree"] == 1


def test_evaluation_writes_audit_and_keeps_resuming(tmp_path, problems, capsys):
    out = evaluate(tmp_path, problems, "a")
    assert (out / "audit.jsonl").is_file()
    assert json.loads((out / "summary.json").read_text())["audit"]["n"] == 12
    assert cli.main(["evaluate", "--audit", str(out)]) == 0
    # the refreshed manifest still marks the evaluation finished: the same command is skipped
    before = (out / "manifest.json").read_text()
    evaluate(tmp_path, problems, "a")
    assert (out / "manifest.json").read_text() == before  # not re-run (a re-run rewrites started_at, wall time)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "audit.jsonl" in manifest["outputs"]["files"]
    assert cli.main(["evaluate", "--model", "teacher"]) == 2
    assert "evaluate needs --problems, --out" in capsys.readouterr().err


# --- report ------------------------------------------------------------------------------------


def test_report_shows_intervals_answers_and_audit(tmp_path, problems, capsys):
    run = tmp_path / "run"
    for model, acc in (("teacher", 0.9), ("student_before", 0.2), ("student_after", 0.6)):
        evaluate(tmp_path, problems, f"run/eval/{model}", f"teacher.options.accuracy={acc}", "eval.seeds=2")
    assert cli.main(["report", str(run), "report.formats=[md, html]"]) == 0
    r = json.loads((run / "report.json").read_text())
    summaries = {m: r[m] for m in ("teacher", "student_before", "student_after")}
    imp, gap = r["improvement_interval"], r["gap_recovered_interval"]
    assert imp["value"] == pytest.approx(r["improvement"]) and imp["n"] == 12
    assert imp["ci95"][0] <= imp["value"] <= imp["ci95"][1]
    assert gap["value"] == pytest.approx(r["gap_recovered"])
    assert gap["ci95"][0] <= gap["value"] <= gap["ci95"][1]
    assert all("settings" in s and "tokens" in s and "pass1_sampled" in s for s in summaries.values())
    md = (run / "report.md").read_text()
    assert "## Answers" in md and "tokens/answer [95% CI]" in md
    assert "sampled pass@1 [95% CI]" in md and "## Checker audit" in md
    assert f"{100 * r['gap_recovered']:.1f}% (95% CI [" in md
    html = (run / "report.html").read_text()
    assert "<h2>Answers</h2>" in html and "<h2>Checker audit</h2>" in html and "sampled pass@1 [95% CI]" in html


def test_compare_refuses_a_summary_without_settings(tmp_path, problems, capsys):
    a = evaluate(tmp_path, problems, "a")
    old = tmp_path / "old"
    old.mkdir()
    summary = json.loads((a / "summary.json").read_text())
    del summary["settings"]
    (old / "summary.json").write_text(json.dumps(summary))  # no samples.jsonl either
    capsys.readouterr()
    assert cli.main(["evaluate", "--compare", str(a), str(old)]) == 2
    assert f"B ({old}) record(s) no settings" in capsys.readouterr().err
    assert cli.main(["evaluate", "--compare", str(a), str(old), "--force"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["difference"]["value"] == 0.0 and not result["difference"]["paired"]  # unpaired: no samples


def test_compare_several_seeds_per_side(tmp_path, problems, capsys):
    """``A1 A2 vs B1 B2``: seed means, B - A with the seed-aware interval and a verdict."""
    from reasondistill.seed_stats import interval

    weak = [evaluate(tmp_path, problems, f"weak{i}", f"teacher.options.accuracy={acc}") for i, acc in
            enumerate((0.1, 0.2))]
    strong = [evaluate(tmp_path, problems, f"strong{i}", f"teacher.options.accuracy={acc}") for i, acc in
              enumerate((0.9, 0.95))]
    capsys.readouterr()
    assert cli.main(["evaluate", "--compare", *map(str, weak), "vs", *map(str, strong)]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])

    def greedy(folder):
        rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        by_id = {r["problem_id"]: float(r["passed"]) for r in rows if r["sample_idx"] == 0}
        return [by_id[p] for p in sorted(by_id)]

    expected = interval([greedy(f) for f in strong], [greedy(f) for f in weak])
    d = result["difference"]
    assert d["value"] == pytest.approx(expected.value) and d["ci95"] == pytest.approx([expected.lo, expected.hi])
    assert d["n_seeds"] == [2, 2] and d["n"] == 12 and d["verdict"] == "better"
    assert result["a"]["seeds"] == 2 and len(result["b"]["per_seed"]) == 2
    assert "2 seeds:" in out and "better" in out and not d["seeds_paired"]
    from reasondistill.seed_stats import format_noise, seed_noise
    for label, side in (("a", weak), ("b", strong)):  # each side's own seed noise, split and printed
        noise = seed_noise([greedy(f) for f in side]).to_dict()
        assert result[label]["seed_noise"] == noise  # floats survive the JSON round trip exactly
        assert f"{label.upper()} seed noise, points: {format_noise(noise)}" in out

    # --paired-seeds: seed i against seed i
    assert cli.main(["evaluate", "--compare", *map(str, weak), "vs", *map(str, strong), "--paired-seeds"]) == 0
    out = capsys.readouterr().out
    d = json.loads(out.strip().splitlines()[-1])["difference"]
    expected = interval([greedy(f) for f in strong], [greedy(f) for f in weak], paired=True)
    assert d["seeds_paired"] and "paired" not in d and d["ci95"] == pytest.approx([expected.lo, expected.hi])
    assert "per-seed differences" in out

    # a side whose seeds were measured under other settings is refused like a pair is
    odd = evaluate(tmp_path, problems, "odd", "teacher.options.accuracy=0.9", "eval.max_new_tokens=50")
    assert cli.main(["evaluate", "--compare", str(weak[0]), "vs", str(strong[0]), str(odd)]) == 2
    assert "sampling.max_new_tokens" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["a", "b", "c"], "got 3 paths and no 'vs'"),
    (["a", "vs"], "folders on both sides of one 'vs'"),
    (["vs", "b"], "folders on both sides of one 'vs'"),
    (["a", "vs", "b", "vs", "c"], "folders on both sides of one 'vs'"),
    (["a", "b", "--paired-seeds"], "--paired-seeds pairs the seeds of two sides"),
    (["a", "vs", "b", "c", "--paired-seeds"], "as many seeds on each side, at least 2 (got 1 vs 2)"),
])
def test_compare_arguments_that_do_not_split_into_two_sides(argv, needle, capsys):
    assert cli.main(["evaluate", "--compare", *argv]) == 2
    assert needle in capsys.readouterr().err
