"""The trace browser's index and JSON API: filters, paging, search, the side-by-side detail, the
server's loopback-only guard, and that the run folder is never changed."""

import hashlib
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fake_run import make_run

from reasondistill.cli import COMMANDS, parse_args
from reasondistill.view import Index, make_server
from reasondistill.view.index import MAX_LIMIT

PLANT = "the quokka-zebra constant"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("view") / "run", n_train=60, samples=4, n_eval=30, plant={7: PLANT})


@pytest.fixture(scope="module")
def index(run):
    return Index.build(run.root)


def q(index, **params):
    return index.query({k: str(v) for k, v in params.items()})


def rows_of(run, name):
    return [json.loads(line) for line in run.path(name).read_text().splitlines()]


def test_every_trace_and_answer_is_a_row(run, index):
    meta = index.facets()
    assert meta["rows"] == 60 * 4 + 3 * 30 and meta["kinds"] == {"trace": 240, "eval": 90}
    assert meta["problems"] == 90 and meta["notes"] == []
    assert meta["sources"] == ["llm-a", "llm-b", "student_after", "student_before", "teacher"]
    assert meta["fates"][:2] == ["rejected", "kept"] and "rejected: truncated" in meta["fates"]


def test_filters_narrow_the_list(run, index):
    traces = rows_of(run, "traces")
    verdicts = {v["trace_id"]: v["passed"] for v in rows_of(run, "verdicts")}
    assert q(index, kind="trace")["matched"] == 240
    wrong = q(index, kind="trace", result="incorrect", limit=200)
    assert wrong["matched"] == sum(not v for v in verdicts.values()) > 0
    assert all(r["passed"] is False for r in wrong["items"])
    hinted = q(index, hinted="yes", limit=200)
    assert hinted["matched"] == sum(t["hinted"] for t in traces) > 0 and all(r["hinted"] for r in hinted["items"])
    assert q(index, source="llm-b")["matched"] == 120
    assert q(index, source="student_after", result="correct")["matched"] == sum(
        json.loads(line)["passed"] for line in run.eval_file("student_after", "samples").read_text().splitlines())
    kept = q(index, fate="kept")["matched"]
    assert kept == len(rows_of(run, "curated"))
    rejected = rows_of(run, "rejected")
    assert q(index, fate="rejected")["matched"] == len(rejected)
    assert q(index, fate="rejected: truncated")["matched"] == sum(r["reason"] == "truncated" for r in rejected)
    rates = {r["problem_id"]: r["pass_rate"] for r in rows_of(run, "pass_rates")}
    hard = q(index, dmin=0.75, limit=200)
    assert hard["matched"] == 4 * sum(1 for r in rates.values() if r is not None and 1 - r >= 0.75)
    assert all(r["difficulty"] >= 0.75 for r in hard["items"])
    short = q(index, kind="trace", lmax=40, limit=200)
    assert short["matched"] == sum(t["usage"]["completion_tokens"] <= 40 for t in traces)
    assert all(r["tokens"] <= 40 for r in short["items"])
    both = q(index, kind="trace", result="incorrect", source="llm-a", lmin=50)
    assert 0 < both["matched"] < wrong["matched"]


def test_search_finds_text_problem_and_ids_case_insensitively(run, index):
    found = q(index, q="QUOKKA-zebra")
    assert found["matched"] == 1 and found["items"][0]["id"] == rows_of(run, "traces")[7]["id"]
    prompt = rows_of(run, "train_problems")[5]["prompt"]
    by_prompt = q(index, q=prompt[-8:])  # "+ b * c?" of problem train-5: every trace of it matches
    assert {r["problem_id"] for r in by_prompt["items"]} >= {"train-5"}
    assert q(index, q="eval-3")["matched"] >= 3  # ids: the three models' answers to eval-3 (and eval-30.. if any)
    assert q(index, q="no such text anywhere")["matched"] == 0


def test_search_maps_hits_to_the_right_rows(tmp_path):
    """Lowercasing can lengthen text ('İ' -> 'i̇'): a hit just after such a trace is still its own row."""
    run = make_run(tmp_path / "r", n_train=3, samples=2, n_eval=2, plant={2: "İ" * 50, 3: "owl-needle"})
    index = Index.build(run.root)
    found = q(index, q="OWL-needle")
    assert found["matched"] == 1 and found["items"][0]["id"] == rows_of(run, "traces")[3]["id"]
    assert q(index, q="i̇i̇")["items"][0]["id"] == rows_of(run, "traces")[2]["id"]
    assert q(index, q="\x00")["matched"] == q(index)["matched"]  # the corpus separator is no query


def test_pages_of_one_filter_come_from_the_cache(index):
    index.forget_results()
    first = q(index, kind="trace", result="correct", sort="-tokens")
    cached = index._results[next(reversed(index._results))]
    again = q(index, kind="trace", result="correct", sort="-tokens", offset=50)
    assert index._results[next(reversed(index._results))] is cached  # not filtered again
    assert again["matched"] == first["matched"] and again["items"][0]["tokens"] <= first["items"][-1]["tokens"]


def test_pages_and_sorting(index):
    first = q(index, offset=0, limit=50)
    second = q(index, offset=50, limit=50)
    assert first["matched"] == second["matched"] == 330 and len(first["items"]) == 50
    assert {r["id"] for r in first["items"]}.isdisjoint(r["id"] for r in second["items"])
    assert q(index, limit=10_000)["limit"] == MAX_LIMIT
    assert len(q(index, offset=320)["items"]) == 10
    longest = q(index, sort="-tokens", limit=20)["items"]
    assert [r["tokens"] for r in longest] == sorted((r["tokens"] for r in longest), reverse=True)
    assert longest[0]["tokens"] == index.facets()["tokens"][1]
    with pytest.raises(ValueError, match="sort"):
        q(index, sort="name")
    with pytest.raises(ValueError, match="dmin must be a number"):
        q(index, dmin="hard")


def test_detail_puts_teacher_and_students_side_by_side(run, index):
    d = index.detail("student_before/eval-4/0")
    assert d["problem"]["id"] == "eval-4" and d["problem"]["split"] == "eval"
    assert d["problem"]["prompt"] == rows_of(run, "eval_problems")[4]["prompt"]
    assert set(d["answers"]) == {"teacher", "student_before", "student_after"}
    assert d["answers"]["student_after"]["text"].startswith("student_after thinks:")
    tid = rows_of(run, "traces")[7]["id"]
    d = index.detail(tid)
    assert PLANT in d["row"]["text"] and d["record"]["id"] == tid and d["row"]["reason"] in ("correct", "wrong_answer")
    assert d["n_traces"] == 4 and {t["id"] for t in d["traces"]} >= {tid} and d["answers"] == {}
    assert d["problem"]["pass_rate"] is not None
    assert index.detail("nope") is None


def test_missing_files_are_notes(tmp_path):
    run = make_run(tmp_path / "r", n_train=5, samples=2, n_eval=3)
    run.verdicts.unlink()
    run.eval_file("student_after", "samples").unlink()
    index = Index.build(run.root)
    assert any("verdicts" in n for n in index.facets()["notes"])
    assert q(index, kind="trace", result="unverified")["matched"] == 10
    assert set(index.detail("student_before/eval-0/0")["answers"]) == {"teacher", "student_before"}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def served(tmp_path):
    run = make_run(tmp_path / "run", n_train=20, samples=3, n_eval=10, plant={2: "<script>alert(1)</script>"})
    before = _hashes(run.root)
    server = make_server(run.root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield run, server, before
    server.shutdown()
    server.server_close()


def _get(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_http_api_reads_the_run_folder_without_changing_it(served):
    run, server, before = served
    assert server.server_address[0] == "127.0.0.1"
    base = server.url
    status, headers, body = _get(base)
    assert status == 200 and b"<script src=\"/app.js\"></script>" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    for path in ("app.js", "app.css"):
        assert _get(base + path)[0] == 200
    meta = json.loads(_get(base + "api/meta")[2])
    assert meta["rows"] == 20 * 3 + 30
    page = json.loads(_get(base + "api/rows?kind=trace&result=correct&limit=5&offset=5")[2])
    assert page["offset"] == 5 and len(page["items"]) == 5 and all(r["passed"] for r in page["items"])
    found = json.loads(_get(base + "api/rows?q=%3Cscript%3E")[2])
    assert found["matched"] == 1
    detail = json.loads(_get(base + "api/row?id=" + urllib.request.quote(found["items"][0]["id"], safe=""))[2])
    assert detail["row"]["text"].startswith("<script>alert(1)</script>")  # JSON carries it; the page shows it as text
    assert _get(base + "api/row?id=nope")[0] == 404
    assert _get(base + "api/rows?lmin=long")[0] == 400
    assert _get(base + "nothing-here")[0] == 404
    assert _get(base + "api/meta", host="attacker.example:80")[0] == 403  # DNS rebinding
    req = urllib.request.Request(base + "api/rows", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
    assert _hashes(run.root) == before  # read only: same files, same bytes


def test_index_rebuilt_when_the_run_folder_changes(served):
    run, server, _ = served
    base = server.url
    assert json.loads(_get(base + "api/rows?q=late+arrival")[2])["matched"] == 0
    with run.traces.open("a") as fh:
        fh.write(json.dumps({"id": "train-0/s9", "problem_id": "train-0", "teacher": "llm-a", "sample_idx": 9,
                             "reasoning": "", "answer_text": "1", "raw": "a late arrival\nAnswer: 1",
                             "finish_reason": "stop", "usage": {}, "hinted": False}) + "\n")
    assert json.loads(_get(base + "api/rows?q=late+arrival")[2])["matched"] == 1


def test_cli_view_command(monkeypatch, tmp_path):
    args = parse_args(["view", str(tmp_path), "--port", "0"])
    assert args.command == "view" and args.port == 0 and args.run_dir == tmp_path
    assert parse_args(["view", str(tmp_path)]).port == 8765
    seen = {}
    monkeypatch.setattr("reasondistill.view.serve", lambda run_dir, port: seen.update(run_dir=run_dir, port=port))
    assert COMMANDS["view"](args) == 0 and seen == {"run_dir": tmp_path, "port": 0}


def test_cli_view_of_a_missing_folder_is_an_error(tmp_path, capsys):
    from reasondistill.cli import main
    assert main(["view", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "not a run folder" in capsys.readouterr().err
