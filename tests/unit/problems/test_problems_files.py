"""File sources: every format, field mapping, splitting, and the errors users hit."""

import csv
import json
from pathlib import Path

import pytest

from reasondistill.config import ProblemsConfig
from reasondistill.errors import ConfigError, InputError
from reasondistill.problems import files
from reasondistill.problems.base import normalize_prompt

FIXTURES = Path(__file__).parents[2] / "fixtures" / "problems"
GSM8K = Path(__file__).parents[2] / "fixtures" / "gsm8k"  # 20 rows per split, carried by the repo
DATA = Path(__file__).parents[3] / ".." / "shared" / "data" / "gsm8k"  # the whole dataset, beside a checkout

ROWS = [{"q": f"What is {i} + {i}?", "a": f"{i} + {i} = {2 * i}\n#### {2 * i:,}"} for i in range(600, 606)]


def cfg(source, **kw):
    kw.setdefault("n_train", None)
    kw.setdefault("n_eval", 2)
    return ProblemsConfig(source=str(source), **kw)


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def all_problems(loaded):
    return loaded.eval + loaded.train


# --- formats and mapping ------------------------------------------------------------------


def test_jsonl_fixture_gsm8k_answers_and_meta():
    loaded = files.load(cfg(FIXTURES / "mini.jsonl", n_eval=3))
    assert (len(loaded.eval), len(loaded.train)) == (3, 5)
    by_prompt = {p.prompt: p for p in all_problems(loaded)}
    eggs = by_prompt["A farm sells 1,200 eggs a day for 3 days. How many eggs is that?"]
    assert eggs.answer == "3600"
    assert eggs.meta["solution"].endswith("#### 3,600")
    assert eggs.meta["line"] == 2 and eggs.meta["answer_format"] == "gsm8k"
    assert eggs.source == "mini" and eggs.id == "mini-1"


def test_real_gsm8k_split_files_disjoint_and_named():
    c = cfg(GSM8K / "train.jsonl", eval_source=str(GSM8K / "test.jsonl"), n_train=15, n_eval=10)
    loaded = files.load(c)
    assert (len(loaded.train), len(loaded.eval)) == (15, 10)
    assert {p.source for p in all_problems(loaded)} == {"gsm8k"}
    assert all(p.id.startswith("gsm8k-test-") for p in loaded.eval)
    assert all(p.id.startswith("gsm8k-train-") for p in loaded.train)
    assert all(p.answer and "####" not in p.answer and "," not in p.answer for p in all_problems(loaded))
    train_keys = {normalize_prompt(p.prompt) for p in loaded.train}
    assert not train_keys & {normalize_prompt(p.prompt) for p in loaded.eval}


@pytest.mark.skipif(not (DATA / "train.jsonl").exists(),
                    reason="../shared/data/gsm8k is absent (e.g. a fresh clone); the fixture test above covers the code")
def test_whole_shared_gsm8k_loads_disjoint_with_every_answer_parsed():
    loaded = files.load(cfg(DATA / "train.jsonl", eval_source=str(DATA / "test.jsonl"), n_eval=1319))
    assert (len(loaded.train), len(loaded.eval)) == (7473 - loaded.skipped["duplicate_prompt"]
                                                     - loaded.skipped["overlap_with_eval"], 1319)
    assert set(loaded.skipped) <= {"duplicate_prompt", "overlap_with_eval"}  # no row failed to parse
    assert all(p.answer and "####" not in p.answer for p in all_problems(loaded))
    train_keys = {normalize_prompt(p.prompt) for p in loaded.train}
    assert not train_keys & {normalize_prompt(p.prompt) for p in loaded.eval}


def test_shuffle_is_seeded():
    a = files.load(cfg(FIXTURES / "mini.jsonl", seed=1))
    b = files.load(cfg(FIXTURES / "mini.jsonl", seed=1))
    c = files.load(cfg(FIXTURES / "mini.jsonl", seed=2))
    ids = lambda x: [p.id for p in all_problems(x)]  # noqa: E731
    assert ids(a) == ids(b) != ids(c)


def test_csv_with_field_mapping_and_id(tmp_path):
    path = tmp_path / "arith.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["key", "q", "a", "level"])
        w.writeheader()
        for i, r in enumerate(ROWS):
            w.writerow({"key": f"k{i}", **r, "level": i % 2})
    loaded = files.load(cfg(path, fields={"prompt": "q", "answer": "a", "id": "key"}))
    got = {p.id: p for p in all_problems(loaded)}
    assert set(got) == {f"k{i}" for i in range(6)}
    assert got["k1"].answer == "1202" and got["k1"].meta["line"] == 4  # header + multi-line cell
    assert got["k1"].meta["extra"] == {"level": "1"}


def test_json_list(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps([{"question": r["q"], "answer": r["a"]} for r in ROWS]))
    loaded = files.load(cfg(path))
    assert sorted(p.answer for p in all_problems(loaded)) == [str(2 * i) for i in range(600, 606)]


def test_parquet_numeric_answers_raw(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nums.parquet"
    pq.write_table(pa.table({"problem": [r["q"] for r in ROWS], "solution": list(range(6))}), path)
    loaded = files.load(cfg(path, fields={"prompt": "problem", "answer": "solution"}))
    assert sorted(p.answer for p in all_problems(loaded)) == [str(i) for i in range(6)]
    assert {p.meta["answer_format"] for p in all_problems(loaded)} == {"raw"}


def test_hf_folder_datasetdict_splits(tmp_path):
    import datasets

    boxed = [{"problem": r["q"], "solution": rf"so \boxed{{\frac{{{i}}}{{2}}}}"} for i, r in enumerate(ROWS)]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(boxed[:4]),
                               "test": datasets.Dataset.from_list(boxed[4:])})
    dd.save_to_disk(str(tmp_path / "mathy"))
    fields = {"prompt": "problem", "answer": "solution"}
    c = cfg(tmp_path / "mathy", eval_source=str(tmp_path / "mathy"), fields=fields)
    loaded = files.load(c)
    assert len(loaded.train) == 4 and len(loaded.eval) == 2
    assert {p.meta["split"] for p in loaded.eval} == {"test"}
    assert loaded.eval[0].answer.startswith(r"\frac{")
    assert loaded.train[0].id.startswith("mathy-train-")
    with pytest.raises(ConfigError, match="available splits: train, test"):
        files.load(cfg(tmp_path / "mathy", fields=fields, split="dev"))


def test_hf_folder_single_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"question": r["q"], "answer": r["a"]} for r in ROWS]).save_to_disk(
        str(tmp_path / "plain"))
    loaded = files.load(cfg(tmp_path / "plain"))
    assert len(all_problems(loaded)) == 6


def test_overlap_between_train_and_eval_is_dropped(tmp_path):
    train = write_jsonl(tmp_path / "tr.jsonl", [{"question": r["q"], "answer": r["a"]} for r in ROWS])
    evals = write_jsonl(tmp_path / "ev.jsonl", [{"question": "  " + ROWS[0]["q"].upper(), "answer": "#### 1"},
                                                 {"question": "fresh?", "answer": "#### 2"}])
    loaded = files.load(cfg(train, eval_source=str(evals)))
    assert len(loaded.eval) == 2 and len(loaded.train) == 5
    assert loaded.skipped == {"overlap_with_eval": 1}


def test_n_train_caps_and_duplicates_counted(tmp_path):
    rows = [{"question": r["q"], "answer": r["a"]} for r in ROWS]
    rows.append({"question": ROWS[3]["q"], "answer": "#### 0"})
    loaded = files.load(cfg(write_jsonl(tmp_path / "d.jsonl", rows), n_eval=0, n_train=3))
    assert len(loaded.train) == 3 and loaded.eval == []
    assert sum(loaded.skipped.values()) == 1  # the repeat, as duplicate or overlap


# --- errors -----------------------------------------------------------------------------


def test_bad_json_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "file.jsonl", [json.dumps({"question": "a", "answer": "#### 1"}),
                                                 json.dumps({"question": "b", "answer": "#### 2"}),
                                                 '{"question": "c", "answer": '])
    with pytest.raises(InputError, match="invalid JSON") as e:
        files.load(cfg(path))
    assert "file.jsonl:3" in str(e.value) and e.value.line == 3


def test_non_object_line(tmp_path):
    path = write_jsonl(tmp_path / "file.jsonl", [{"question": "a", "answer": "#### 1"}, "[1, 2]"])
    with pytest.raises(InputError, match="file.jsonl:2: expected a JSON object, got list"):
        files.load(cfg(path))


def test_missing_field_names_it_and_suggests_mapping(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"q": "a", "a": "#### 1"}])
    with pytest.raises(InputError) as e:
        files.load(cfg(path))
    msg = str(e.value)
    assert "qa.jsonl:1" in msg and "missing field 'question'" in msg and "columns: a, q" in msg
    assert "problems.fields.prompt=<column>" in msg and e.value.field == "question"


def test_missing_field_in_one_jsonl_row(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "a", "answer": "#### 1"}, {"question": "b"}])
    with pytest.raises(InputError, match=r"qa.jsonl:2: field 'answer': missing field 'answer'"):
        files.load(cfg(path))


def test_wrong_mapping_on_csv_fails_at_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("question,answer\nhi,#### 1\n")
    with pytest.raises(InputError, match=r"t.csv:1: field 'prob'.*problems.fields.prompt"):
        files.load(cfg(path, fields={"prompt": "prob", "answer": "answer"}, on_error="skip"))


def test_wrong_mapping_on_jsonl_fails_even_when_skipping(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "a", "answer": "#### 1"}] * 3)
    with pytest.raises(InputError, match="all 3 rows are bad"):
        files.load(cfg(path, fields={"prompt": "prompt"}, on_error="skip"))


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match="empty.jsonl: file is empty"):
        files.load(cfg(path))


def test_empty_csv_with_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("question,answer\n")
    with pytest.raises(InputError, match="file is empty"):
        files.load(cfg(path))


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        files.load(cfg(tmp_path / "nope.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ConfigError, match="unsupported problem file type '.txt'"):
        files.load(cfg(tmp_path / "x.txt"))


@pytest.mark.parametrize("fmt, answer, match", [
    ("gsm8k", "the answer is 4", "no '#### <answer>' marker"),
    ("gsm8k", "4 ####  ", "no answer after '####'"),
    ("boxed", "the answer is 4", r"no complete \\boxed"),
    ("auto", "   ", "answer is empty"),
])
def test_unparseable_answer(tmp_path, fmt, answer, match):
    ok = {"question": "a", "answer": r"#### \boxed{1}"}  # parses in every format
    path = write_jsonl(tmp_path / "f.jsonl", [ok, {"question": "b", "answer": answer}])
    with pytest.raises(InputError, match=match) as e:
        files.load(cfg(path, answer_format=fmt))
    assert e.value.line == 2 and e.value.field == "answer"


def test_non_string_prompt(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"question": ["a"], "answer": "#### 1"}])
    with pytest.raises(InputError, match="f.jsonl:1: field 'question': prompt must be a string, got list"):
        files.load(cfg(path))


def test_parquet_error_mentions_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"question": ["a", "b", "c"], "answer": ["#### 1", "#### 2", "oops"]}), path)
    with pytest.raises(InputError, match=r"p.parquet:3: field 'answer': .*\(row 3\)"):
        files.load(cfg(path, answer_format="gsm8k"))


def test_skip_counts_bad_rows_per_reason(tmp_path):
    good = [json.dumps({"question": r["q"], "answer": r["a"]}) for r in ROWS[:4]]
    bad = ["{broken", "7", json.dumps({"question": "x"}), json.dumps({"question": "y", "answer": "no marker"}),
           json.dumps({"question": 3, "answer": "#### 3"})]
    path = write_jsonl(tmp_path / "mixed.jsonl", good[:2] + bad + good[2:])
    loaded = files.load(cfg(path, on_error="skip", answer_format="gsm8k"))
    assert len(all_problems(loaded)) == 4
    assert loaded.skipped == {"invalid_json": 1, "not_an_object": 1, "missing_field": 1,
                              "unparseable_answer": 1, "bad_prompt": 1}
    with pytest.raises(InputError, match="mixed.jsonl:3: invalid JSON"):
        files.load(cfg(path, answer_format="gsm8k"))


def test_duplicate_ids_rejected(tmp_path):
    rows = [{"k": "same", "question": r["q"], "answer": r["a"]} for r in ROWS[:2]]
    with pytest.raises(InputError, match="id 'same' repeats"):
        files.load(cfg(write_jsonl(tmp_path / "i.jsonl", rows), fields={"id": "k"}))


def test_config_rejects_unknown_record_field_and_fills_defaults():
    assert ProblemsConfig(fields={"prompt": "q"}).fields == {"prompt": "q", "answer": "answer"}
    with pytest.raises(ConfigError, match="solution"):
        ProblemsConfig(fields={"prompt": "q", "answer": "a", "solution": "s"})


def test_eval_eating_every_row_is_a_config_error():
    with pytest.raises(ConfigError, match="no training problems left"):
        files.load(cfg(FIXTURES / "mini.jsonl", n_eval=300))
