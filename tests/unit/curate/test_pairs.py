"""curate.pairs.build_pairs: chosen/rejected pairs from curate's train.jsonl and negatives.jsonl."""

import json

import pytest

from reasondistill.curate.pairs import build_pairs
from reasondistill.records import PreferenceExample
from reasondistill.errors import ConfigError, InputError
from reasondistill.io import read_records, write_jsonl
from reasondistill.records import TrainExample


def ex(pid, tid, text, hinted=False):
    return TrainExample(prompt=[{"role": "user", "content": f"question {pid}"}],
                        completion=[{"role": "assistant", "content": text}],
                        meta={"problem_id": pid, "trace_id": tid, "teacher": "dummy", "hinted": hinted})


TRAIN = [ex("p1", "a1", "right 1"), ex("p1", "a2", "right 2", hinted=True), ex("p2", "b1", "right"),
         ex("p3", "c1", "right")]
NEGATIVES = [ex("p1", "n1", "wrong 1"), ex("p1", "n2", "wrong 2"), ex("p1", "n3", "wrong 3"),
             ex("p3", "m1", "wrong"), ex("p4", "z1", "wrong, and p4 has no correct trace")]


@pytest.fixture()
def files(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "negatives.jsonl", NEGATIVES)
    return tmp_path / "train.jsonl", tmp_path / "negatives.jsonl", tmp_path / "pairs.jsonl"


def test_counts_skips_and_trl_preference_format(files):
    train, negs, out = files
    counts = build_pairs(train, negs, out)
    assert counts == {"problems": 3, "pairs": 3, "problems_with_pairs": 2, "skipped_no_negative": 1,
                      "negatives": 5, "negatives_without_positive": 1}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]) == {"prompt", "chosen", "rejected", "meta"}
    from trl.data_utils import is_conversational
    assert all(is_conversational(r) for r in rows)
    pairs = read_records(out, PreferenceExample)
    by_pid = {}
    for p in pairs:
        by_pid.setdefault(p.meta["problem_id"], []).append(p)
        assert set(p.meta) == {"problem_id", "chosen_trace_id", "rejected_trace_id"}
        assert p.prompt == [{"role": "user", "content": f"question {p.meta['problem_id']}"}]
        assert p.chosen[0]["role"] == p.rejected[0]["role"] == "assistant"
        assert p.chosen[0]["content"].startswith("right") and p.rejected[0]["content"].startswith("wrong")
    assert sorted(by_pid) == ["p1", "p3"]
    # two pairs for p1 use two different correct and two different incorrect traces
    p1 = by_pid["p1"]
    assert len({p.meta["chosen_trace_id"] for p in p1}) == 2
    assert len({p.meta["rejected_trace_id"] for p in p1}) == 2


def test_one_pair_prefers_unhinted_chosen_and_is_seeded(files, tmp_path):
    train, negs, out = files
    build_pairs(train, negs, out, max_pairs_per_problem=1)
    p1 = [p for p in read_records(out, PreferenceExample) if p.meta["problem_id"] == "p1"]
    assert len(p1) == 1 and p1[0].meta["chosen_trace_id"] == "a1"
    first = out.read_text()
    build_pairs(train, negs, out, max_pairs_per_problem=1)
    assert out.read_text() == first
    rejected = set()
    for seed in range(8):
        build_pairs(train, negs, tmp_path / "s.jsonl", max_pairs_per_problem=1, seed=seed)
        rejected |= {p.meta["rejected_trace_id"] for p in read_records(tmp_path / "s.jsonl", PreferenceExample)
                     if p.meta["problem_id"] == "p1"}
    assert len(rejected) > 1  # the seed picks which incorrect trace


def test_cap_above_combinations_gives_every_pair_once(files):
    train, negs, out = files
    counts = build_pairs(train, negs, out, max_pairs_per_problem=100)
    ids = [(p.meta["chosen_trace_id"], p.meta["rejected_trace_id"]) for p in read_records(out, PreferenceExample)]
    assert counts["pairs"] == len(ids) == len(set(ids)) == 2 * 3 + 1


def test_no_negatives_is_a_clear_error_and_writes_nothing(files):
    train, negs, out = files
    negs.write_text("")  # curate writes an empty negatives.jsonl when every trace was correct
    with pytest.raises(ConfigError, match=r"no negatives available .*REDI/DPO/SimPO need incorrect traces; "
                                          r"generate more samples per problem"):
        build_pairs(train, negs, out)
    assert not out.exists()


def test_negatives_only_for_problems_without_correct_traces(files):
    train, negs, out = files
    write_jsonl(negs, [ex("p4", "z1", "wrong")])
    with pytest.raises(ConfigError, match="no problem has both a correct trace"):
        build_pairs(train, negs, out)


def test_bad_rows_name_file_and_line(files):
    train, negs, out = files
    rows = NEGATIVES[:2] + [TrainExample(prompt=[], completion=[{"role": "assistant", "content": "x"}],
                                         meta={"problem_id": "p1"})]
    write_jsonl(negs, rows)
    with pytest.raises(InputError, match=r"negatives.jsonl:3: field 'meta'.*trace_id"):
        build_pairs(train, negs, out)
    other_prompt = TrainExample(prompt=[{"role": "user", "content": "another prompt"}],
                                completion=[{"role": "assistant", "content": "wrong"}],
                                meta={"problem_id": "p1", "trace_id": "n1"})
    write_jsonl(negs, [other_prompt])
    with pytest.raises(InputError, match=r"negatives.jsonl:1: field 'prompt'"):
        build_pairs(train, negs, out)
    with pytest.raises(ConfigError, match="max_pairs_per_problem"):
        build_pairs(train, negs, out, max_pairs_per_problem=0)
