"""``read_problem_set``: held-out problems for an evaluation outside a run folder, from Problem
records or a raw dataset file, or a folder holding either."""

from __future__ import annotations

import json
from pathlib import Path

from reasondistill import io
from reasondistill.config import ProblemsConfig
from reasondistill.problems.files import read_problem_set
from reasondistill.records import Problem


def test_raw_rows_records_and_folders(tmp_path: Path):
    raw = tmp_path / "gsm" / "test.jsonl"
    raw.parent.mkdir()
    raw.write_text(json.dumps({"question": "2 and 3?", "answer": "2+3=5\n#### 5"}) + "\n"
                   + json.dumps({"question": "How many?", "answer": "lots\n#### 1,000"}) + "\n")
    from_file = read_problem_set(raw, ProblemsConfig())
    assert [(p.id, p.answer) for p in from_file] == [("gsm-test-0", "5"), ("gsm-test-1", "1000")]  # file order
    assert read_problem_set(raw.parent, ProblemsConfig()) == from_file  # a folder: its test.jsonl

    records = tmp_path / "problems" / "eval.jsonl"
    io.write_jsonl(records, [Problem(id="x-7", source="x", prompt="1+1?", answer="2", meta={})])
    assert [p.id for p in read_problem_set(records.parent, ProblemsConfig())] == ["x-7"]  # eval.jsonl first
