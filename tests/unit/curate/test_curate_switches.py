"""The issue-10 curation switches, each on hand-made traces whose survivors are known.

Most tests run the curate stage on the fixed set of ``test_curate_default_golden`` (six problems,
two teachers ``alpha`` and ``beta``; teacher pass rates p1 0.8, p2 0, p3 0.5, p4 1, p5 0.25, p6
unsampled), whose default survivors are pinned there:

    train: p1/alpha/s1 p1/beta/s1 p2/alpha/h2 p3/alpha/s0 p4/beta/s0 p4/beta/s1 p5/alpha/s0
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reasondistill import curate as curate_stage
from reasondistill import verify as verify_stage
from reasondistill.config import CurateConfig, VerifyConfig
from reasondistill.curate.best_teacher import TeachersConfig
from reasondistill.curate.budget import LengthConfig
from reasondistill.curate.consistency import SelfConsistencyConfig
from reasondistill.curate.dedup import Dedup, jaccard, word_ngrams
from reasondistill.curate.decontam import Decontaminate, DecontaminateConfig, ngrams
from reasondistill.errors import ConfigError
from reasondistill.io import iter_jsonl, read_records, write_jsonl
from reasondistill.records import Problem, Trace, TrainExample, Verdict

from tests.helpers import recipe, stage_layout
from tests.unit.curate.test_curate_default_golden import FILES, GOLDEN, run_default

DEFAULT_TRAIN = ["p1/alpha/s1", "p1/beta/s1", "p2/alpha/h2", "p3/alpha/s0", "p4/beta/s0", "p4/beta/s1", "p5/alpha/s0"]


def outputs(out):
    train = [e.meta["trace_id"] for e in read_records(out / "train.jsonl", TrainExample, allow_empty=True)]
    negatives = [e.meta["trace_id"] for e in read_records(out / "negatives.jsonl", TrainExample, allow_empty=True)]
    rejected = {o["trace_id"]: o["reason"] for _, o in iter_jsonl(out / "rejected.jsonl", allow_empty=True)}
    return train, negatives, rejected


def golden(tmp_path, **cfg):
    manifest, out = run_default(tmp_path, CurateConfig(**cfg))
    return (manifest["outputs"], *outputs(out), out)


# ---------------------------------------------------------------------------
# defaults, manifest


def test_every_switch_off_by_default_and_the_manifest_gains_statistics(tmp_path):
    m, train, _, _, out = golden(tmp_path)
    assert train == DEFAULT_TRAIN
    for name in FILES:
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes()
    assert not (out / "selected_problems.jsonl").exists() and "policy_reports" not in m
    assert m["pass_rate_histogram"] == {"0.00": 1, "0.25": 1, "0.50": 1, "0.80": 1, "1.00": 1, "none": 1}
    chars = m["length"]["chars"]
    assert chars["traces"]["n"] == 21 and chars["correct"]["n"] == 12 and chars["kept"]["n"] == 7
    kept_chars = sorted(len(e.completion[0]["content"]) for e in read_records(out / "train.jsonl", TrainExample))
    assert chars["kept"]["median"] == kept_chars[3] and chars["kept"]["p90"] == kept_chars[-1]
    assert m["length"]["tokens"]["kept"]["mean"] == pytest.approx(
        sum(len(e.completion[0]["content"].split()) for e in read_records(out / "train.jsonl", TrainExample)) / 7,
        abs=0.01)


def test_default_curate_loads_no_model(tmp_path):
    """The student is loaded only when student-aware selection is on: a default run imports neither
    the scoring module nor torch."""
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "from pathlib import Path\n"
            "from tests.unit.curate.test_curate_default_golden import run_default\n"
            "run_default(Path(sys.argv[3]))\n"
            "print(sorted(m for m in ('torch', 'transformers', 'reasondistill.scoring') if m in sys.modules))\n")
    root = str(GOLDEN.parents[2])
    done = subprocess.run([sys.executable, "-c", code, f"{root}/src", root, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------
# difficulty from pass rate


def test_pass_rate_band_keeps_the_edge_of_competence(tmp_path):
    m, train, negatives, rejected, out = golden(tmp_path, pass_rate_band=[0, 1])
    assert train == ["p1/alpha/s1", "p1/beta/s1", "p3/alpha/s0", "p5/alpha/s0"]  # 0 < p < 1
    assert rejected["p2/alpha/h2"] == "too_hard" and rejected["p2/alpha/s0"] == "too_hard"  # negatives too
    assert rejected["p4/beta/s0"] == rejected["p4/beta/s1"] == rejected["p4/alpha/s0"] == "too_easy"
    assert rejected["p2/beta/s0"] == "truncated"  # per-trace reasons come first
    assert all(t.split("/")[0] in {"p1", "p3", "p5"} for t in negatives)
    assert [p.id for p in read_records(out / "selected_problems.jsonl", Problem)] == ["p1", "p3", "p5"]
    assert "selected_problems.jsonl" in m["files"] and m["selected_problems"] == 3
    assert m["policy_reports"]["out_of_band"] == {"band": [0.0, 1.0], "inclusive": False, "problems": 6,
                                                  "in_band": 3, "too_easy": 1, "too_hard": 1, "no_pass_rate": 1}
    assert m["pass_rate_histogram"]["1.00"] == 1  # the histogram covers every problem


def test_pass_rate_band_inclusive(tmp_path):
    _, train, _, rejected, out = golden(tmp_path, pass_rate_band=[0.5, 1.0], pass_rate_inclusive=True)
    assert train == ["p1/alpha/s1", "p1/beta/s1", "p3/alpha/s0", "p4/beta/s0", "p4/beta/s1"]
    assert rejected["p5/alpha/s0"] == "too_hard"
    assert [p.id for p in read_records(out / "selected_problems.jsonl", Problem)] == ["p1", "p3", "p4"]


def test_a_stale_selection_is_removed(tmp_path):
    golden(tmp_path, pass_rate_band=[0, 1])
    assert (tmp_path / "curate" / "selected_problems.jsonl").exists()
    golden(tmp_path)
    assert not (tmp_path / "curate" / "selected_problems.jsonl").exists()


@pytest.mark.parametrize("band,inclusive", [([0.5], False), ([0.8, 0.2], False), ([0.5, 0.5], False),
                                            ([-0.1, 1], True), ([0, 1.5], True)])
def test_bad_bands(band, inclusive):
    with pytest.raises(ConfigError, match="pass_rate_band"):
        CurateConfig(pass_rate_band=band, pass_rate_inclusive=inclusive)


# ---------------------------------------------------------------------------
# length


def test_shortest_correct_of_k(tmp_path):
    m, train, _, rejected, _ = golden(tmp_path, length=LengthConfig(shortest=1, unit="chars"), max_per_problem=5)
    # the shortest unhinted correct trace per problem; p2 has only its hinted one; p4's two are 34
    # characters each, and the earlier one wins the tie
    assert train == ["p1/alpha/s1", "p2/alpha/h2", "p3/alpha/s0", "p4/beta/s0", "p5/alpha/s0"]
    assert rejected["p1/beta/s1"] == rejected["p1/alpha/s0"] == rejected["p4/beta/s1"] == "not_shortest"
    assert m["policy_reports"]["not_shortest"] == {"n": 1, "unit": "chars"}


def test_shortest_in_tokens_goes_by_the_recorded_usage(tmp_path):
    # the text with more characters has fewer tokens by the teacher's own count
    problems, traces = tmp_path / "problems.jsonl", tmp_path / "traces.jsonl"
    write_jsonl(problems, [Problem("q", "t", "What is 1 + 1?", "2")])
    ts = [Trace("q/a/s0", "q", "a", 0, "", "", "One plus one is two.\nAnswer: 2", "stop", usage={"completion_tokens": 9}),
          Trace("q/a/s1", "q", "a", 1, "", "", "1+1=2, a longer text in characters.\nAnswer: 2", "stop",
                usage={"completion_tokens": 4})]
    write_jsonl(traces, ts)
    write_jsonl(tmp_path / "verdicts.jsonl", [Verdict(t.id, "q", "math", 1.0, True, "correct") for t in ts])
    for unit, kept in (("tokens", ["q/a/s1"]), ("chars", ["q/a/s0"])):
        out = tmp_path / unit
        curate_stage.run(recipe(curate=CurateConfig(length=LengthConfig(shortest=1, unit=unit))),
                         stage_layout(out, "curate", train_problems=problems, traces=traces,
                                      verdicts=tmp_path / "verdicts.jsonl"))
        assert outputs(out)[0] == kept


def test_token_budget_drops_long_correct_traces_only(tmp_path):
    m, train, negatives, rejected, _ = golden(tmp_path, length=LengthConfig(budget=6), max_per_problem=5)
    # word counts: p1/alpha/s1 3, p1/beta/s1 7, p2/alpha/h2 8, p3/alpha/s0 6, p4/beta/s0 9, p4/beta/s1 8, p5 3
    assert train == ["p1/alpha/s1", "p3/alpha/s0", "p5/alpha/s0"]
    assert rejected["p1/beta/s1"] == rejected["p2/alpha/h2"] == rejected["p4/beta/s1"] == "over_budget"
    assert "p1/beta/s2" in negatives  # wrong traces stay negatives whatever their length
    assert m["length"]["tokens"]["kept"]["n"] == 3 and m["length"]["tokens"]["kept"]["p90"] <= 6
    assert m["length"]["tokens"]["correct"]["n"] == 12


def test_per_difficulty_budgets(tmp_path):
    # difficulty = 1 - pass rate: p4 0, p1 0.2, p3 0.5, p5 0.75, p2 1
    length = LengthConfig(budget_by_difficulty=[[0.25, 6], [0.6, 100]], budget=7)
    m, train, _, rejected, _ = golden(tmp_path, length=length, max_per_problem=5)
    assert rejected["p1/beta/s1"] == "over_budget"  # p1: easy, 6 tokens; 7 words
    assert rejected["p4/beta/s1"] == rejected["p4/beta/s0"] == "over_budget"  # p4: easy
    assert "p3/alpha/s0" in train  # p3: 100 tokens
    assert rejected["p2/alpha/h2"] == "over_budget"  # p2: no row covers 1.0, so the flat budget (7)
    assert "p5/alpha/s0" in train
    assert m["policy_reports"]["over_budget"]["budget_by_difficulty"] == [[0.25, 6], [0.6, 100]]


def test_length_config_validation():
    with pytest.raises(ConfigError):
        LengthConfig(unit="words")
    with pytest.raises(ConfigError):
        LengthConfig(budget_by_difficulty=[[0.8, 10], [0.2, 5]])
    with pytest.raises(ConfigError):
        LengthConfig(budget_by_difficulty=[[0.5]])


# ---------------------------------------------------------------------------
# near-duplicates, decontamination


def test_near_duplicates():
    a = "First add 1 and 1 to get 2 so the answer is 2\nAnswer: 2"
    b = "First add 1 and 1 to get 2 , so the answer is 2\nAnswer: 2"  # one token more
    c = "Two ones make two\nAnswer: 2"
    t = [Trace(x, "p", "d", i, "", "", raw, "stop") for i, (x, raw) in enumerate((("a", a), ("b", b), ("c", c)))]
    assert jaccard(word_ngrams(a.casefold(), 3), word_ngrams(b.casefold(), 3)) > 0.6
    kept, dropped = Dedup(jaccard=0.6).select(Problem("p", "t", "q", "2"), t, {})
    assert [x.id for x in kept] == ["a", "c"] and [(x.id, why) for x, why in dropped] == [("b", "near_duplicate")]
    kept, dropped = Dedup().select(Problem("p", "t", "q", "2"), t, {})  # exact only, as before
    assert [x.id for x in kept] == ["a", "b", "c"]


def test_near_duplicate_switch_in_the_stage(tmp_path):
    _, train, _, rejected, _ = golden(tmp_path, dedup_jaccard=0.3, dedup_ngram=1, max_per_problem=5)
    # p4: "Take 3 from 10 to get 7." + "Answer: 7" or "\\boxed{7}": unigram Jaccard 7/10 >= 0.3
    assert rejected["p4/beta/s1"] == "near_duplicate" and "p4/beta/s0" in train


def test_decontamination(tmp_path):
    problems = [Problem("t1", "t", "A farmer has 12 cows and buys 7 more. How many cows does he have now?", "19"),
                Problem("t2", "t", "A baker bakes 30 loaves and sells 12. How many are left?", "18"),
                Problem("t3", "t", "What is 2 + 3?", "5")]
    held_out = [Problem("e1", "t", "A farmer has 12 cows and buys 8 more. How many cows does he have now?", "20"),
                Problem("e2", "t", "What is 2 + 3?", "5")]
    traces = [Trace(f"{p.id}/a/s0", p.id, "a", 0, "", "", f"So\nAnswer: {p.answer}", "stop") for p in problems]
    traces.append(Trace("t2/a/s1", "t2", "a", 1, "", "", "Answer: 17", "stop"))
    write_jsonl(tmp_path / "problems.jsonl", problems)
    write_jsonl(tmp_path / "eval.jsonl", held_out)
    write_jsonl(tmp_path / "traces.jsonl", traces)
    write_jsonl(tmp_path / "verdicts.jsonl", [Verdict(t.id, t.problem_id, "math", float(ok), ok, "")
                                              for t, ok in zip(traces, (True, True, True, False))])
    layout = stage_layout(tmp_path / "out", "curate", train_problems=tmp_path / "problems.jsonl",
                          traces=tmp_path / "traces.jsonl", verdicts=tmp_path / "verdicts.jsonl",
                          eval_problems=tmp_path / "eval.jsonl")
    m = curate_stage.run(recipe(curate=CurateConfig(decontaminate=DecontaminateConfig(ngram=5, min_overlap=0.5))),
                         layout)
    train, negatives, rejected = outputs(tmp_path / "out")
    assert train == ["t2/a/s0"] and negatives == ["t2/a/s1"]
    assert rejected == {"t1/a/s0": "contaminated", "t3/a/s0": "contaminated"}
    removed = m["outputs"]["policy_reports"]["contaminated"]["removed"]
    assert [(r["problem_id"], r["eval_id"]) for r in removed] == [("t1", "e1"), ("t3", "e2")]
    assert removed[1]["overlap"] == 1.0 and 0.5 <= removed[0]["overlap"] < 1
    assert [p.id for p in read_records(tmp_path / "out" / "selected_problems.jsonl", Problem)] == ["t2"]
    assert "../eval.jsonl" in m["inputs"]  # a changed held-out set re-runs the stage

    with pytest.raises(ConfigError, match="held-out problems"):
        curate_stage.run(recipe(curate=CurateConfig(decontaminate=DecontaminateConfig(
            ngram=5, eval_problems=str(tmp_path / "missing.jsonl")))), layout)


def test_ngrams_of_short_prompts_are_the_whole_prompt():
    assert ngrams("What is 2+3?", 8) == {("what", "is", "2", "3")}
    assert Decontaminate(3, 0.5).find({"a": Problem("a", "t", "x y z w", "")},
                                      [Problem("e", "t", "nothing alike here", "")]) == {}


# ---------------------------------------------------------------------------
# self-consistency for problems without a gold answer


def _no_gold_files(tmp_path):
    problems = [Problem("g", "t", "What is 2 + 2?", "4"),  # with gold: unaffected
                Problem("n1", "t", "Pick the best number.", ""),  # 5 5 5.0 6: 5 has 3/4 votes
                Problem("n2", "t", "Pick any number.", ""),  # 1 2 3 1: 1 has 2/4 votes
                Problem("n3", "t", "Pick a side.", "")]  # 1 1 2 2: a tie
    answers = {"g": ["4", "5"], "n1": ["5", "5", "5.0", "6"], "n2": ["1", "2", "3", "1"], "n3": ["1", "1", "2", "2"]}
    traces = [Trace(f"{pid}/a/s{i}", pid, "a", i, "", "", f"I think {i}.\nAnswer: {a}", "stop")
              for pid, ans in answers.items() for i, a in enumerate(ans)]
    write_jsonl(tmp_path / "problems.jsonl", problems)
    write_jsonl(tmp_path / "traces.jsonl", traces)
    verify_stage.run(recipe(verify=VerifyConfig()), stage_layout(tmp_path / "verify", "verify",
                                                                 train_problems=tmp_path / "problems.jsonl",
                                                                 traces=tmp_path / "traces.jsonl"))
    return tmp_path / "problems.jsonl", tmp_path / "traces.jsonl", tmp_path / "verify" / "verdicts.jsonl"


def test_verify_marks_no_gold(tmp_path):
    _, _, verdicts = _no_gold_files(tmp_path)
    rows = {o["trace_id"]: o for _, o in iter_jsonl(verdicts)}
    assert rows["n1/a/s0"]["reason"] == "no_gold" and rows["n1/a/s0"]["extracted"] == "5"
    assert not rows["n1/a/s0"]["passed"] and rows["g/a/s0"]["passed"]
    manifest = json.loads((tmp_path / "verify" / "manifest.json").read_text())
    assert manifest["outputs"]["counts"]["reasons"]["no_gold"] == 12


def test_no_gold_without_self_consistency_is_rejected_not_negative(tmp_path):
    problems, traces, verdicts = _no_gold_files(tmp_path)
    curate_stage.run(recipe(), stage_layout(tmp_path / "out", "curate", train_problems=problems, traces=traces,
                                            verdicts=verdicts))
    train, negatives, rejected = outputs(tmp_path / "out")
    assert train == ["g/a/s0"] and negatives == ["g/a/s1"]
    assert {r for t, r in rejected.items() if t.startswith("n")} == {"no_gold"} and len(rejected) == 12
    rates = {o["problem_id"]: o for _, o in iter_jsonl(tmp_path / "out" / "pass_rates.jsonl")}
    assert rates["n1"]["pass_rate"] is None and rates["g"]["pass_rate"] == 0.5


def test_self_consistency_pseudo_labels(tmp_path):
    problems, traces, verdicts = _no_gold_files(tmp_path)
    cfg = CurateConfig(self_consistency=SelfConsistencyConfig(min_share=0.6), max_per_problem=5)
    m = curate_stage.run(recipe(curate=cfg), stage_layout(tmp_path / "out", "curate", train_problems=problems,
                                                          traces=traces, verdicts=verdicts))
    train, negatives, rejected = outputs(tmp_path / "out")
    assert train == ["g/a/s0", "n1/a/s0", "n1/a/s1", "n1/a/s2"]  # 5, 5 and 5.0 agree
    assert negatives == ["g/a/s1", "n1/a/s3"]  # the minority answer is a negative
    assert rejected == {f"n{k}/a/s{i}": "low_agreement" for k in (2, 3) for i in range(4)}
    rates = {o["problem_id"]: o for _, o in iter_jsonl(tmp_path / "out" / "pass_rates.jsonl")}
    assert rates["n1"] == {"problem_id": "n1", "n": 4, "n_correct": 3, "pass_rate": 0.75, "difficulty": 0.25,
                                "pseudo_label": "5", "vote_share": 0.75, "votes": 3, "samples": 4,
                                "pseudo_labelled": True}
    assert rates["n2"]["pseudo_label"] == "1" and rates["n2"]["vote_share"] == 0.5
    assert not rates["n2"]["pseudo_labelled"] and rates["n2"]["pass_rate"] is None
    assert not rates["n3"]["pseudo_labelled"]  # a tie is no majority
    assert m["outputs"]["policy_reports"]["self_consistency"] == {"min_share": 0.6, "min_votes": 2,
                                                                  "problems_without_gold": 3, "pseudo_labelled": 1}
    # a lower bar labels n2 too (a 2-of-4 majority without a tie)
    cfg = CurateConfig(self_consistency=SelfConsistencyConfig(min_share=0.5), max_per_problem=5)
    curate_stage.run(recipe(curate=cfg), stage_layout(tmp_path / "out2", "curate", train_problems=problems,
                                                      traces=traces, verdicts=verdicts))
    train, _, _ = outputs(tmp_path / "out2")
    assert [t for t in train if t.startswith("n2")] == ["n2/a/s0", "n2/a/s3"]


# ---------------------------------------------------------------------------
# teacher mixtures


def test_best_teacher_per_problem(tmp_path):
    m, train, _, rejected, _ = golden(tmp_path, teachers=TeachersConfig(best=True))
    # p1: alpha 2/2 beats beta 2/3; p4: a 2/2 tie, beta's overall rate (4/7) beats alpha's (7/13)
    assert train == ["p1/alpha/s1", "p1/alpha/s0", "p2/alpha/h2", "p3/alpha/s0", "p4/beta/s0", "p4/beta/s1",
                     "p5/alpha/s0"]
    assert rejected["p1/beta/s1"] == rejected["p4/alpha/s0"] == "not_best_teacher"
    report = m["policy_reports"]["not_best_teacher"]
    assert report["overall_pass_rate"] == {"alpha": round(7 / 13, 4), "beta": round(4 / 7, 4)}
    assert report["problems_per_teacher"] == {"alpha": 4, "beta": 1}


def test_teacher_quota(tmp_path):
    _, train, _, rejected, _ = golden(tmp_path, teachers=TeachersConfig(quota={"beta": 1}), max_per_problem=5)
    assert [t for t in train if t.startswith("p4")] == ["p4/beta/s0", "p4/alpha/s0"]
    assert rejected["p4/beta/s1"] == "over_teacher_quota"
    assert [t for t in train if t.startswith("p1")] == ["p1/alpha/s1", "p1/beta/s1", "p1/alpha/s0"]
    _, train, _, rejected, _ = golden(tmp_path / "b", teachers=TeachersConfig(quota={"alpha": 0, "*": 5}))
    assert not any("/alpha/" in t for t in train) and rejected["p3/alpha/s0"] == "over_teacher_quota"


def test_teacher_share_keeps_one_drawn_teacher_per_problem(tmp_path):
    m, train, _, rejected, _ = golden(tmp_path, teachers=TeachersConfig(share={"alpha": 1, "beta": 1}),
                                      max_per_problem=5)
    report = m["policy_reports"]["not_share_teacher"]
    kept_teachers = {}
    for t in train:
        kept_teachers.setdefault(t.split("/")[0], set()).add(t.split("/")[1])
    assert all(len(v) == 1 for v in kept_teachers.values())  # one teacher per problem
    assert sum(report["problems_per_teacher"].values()) == len(kept_teachers)
    assert any(r == "not_share_teacher" for r in rejected.values())
    # only alpha named: beta is never drawn, and problems only beta solved keep nothing
    _, train, _, _, _ = golden(tmp_path / "b", teachers=TeachersConfig(share={"alpha": 1}), max_per_problem=5)
    assert train and all("/alpha/" in t for t in train)


def test_teacher_share_ratio_on_many_problems():
    """A 1:4 long:short share gives about a fifth of the problems to `long`, seeded per problem."""
    from reasondistill.curate.teacher_share import TeacherShare
    from reasondistill.records import Problem, Trace

    policy = TeacherShare.from_config(CurateConfig(teachers=TeachersConfig(share={"long": 1, "short": 4})))
    picks = []
    for i in range(1000):
        p = Problem(f"q{i}", "t", "?", "1")
        traces = [Trace(f"q{i}/{name}/s0", p.id, name, 0, "r", "1", "r", "stop") for name in ("long", "short")]
        kept, dropped = policy.select(p, traces, {})
        assert len(kept) == 1 and len(dropped) == 1 and dropped[0][1] == "not_share_teacher"
        picks.append(kept[0].teacher)
    assert 0.17 < picks.count("long") / 1000 < 0.23
    assert policy.report()["problems_per_teacher"] == {"long": picks.count("long"), "short": picks.count("short")}
    again = TeacherShare.from_config(CurateConfig(teachers=TeachersConfig(share={"long": 1, "short": 4})))
    p = Problem("q7", "t", "?", "1")
    traces = [Trace(f"q7/{name}/s0", p.id, name, 0, "r", "1", "r", "stop") for name in ("long", "short")]
    assert again.select(p, traces, {})[0][0].teacher == picks[7]  # the draw depends on the problem alone


def test_shortest_across_teachers(tmp_path):
    _, train, _, _, _ = golden(tmp_path, length=LengthConfig(shortest=1), dedup=False)
    # p1: alpha's "1+1=2" (3 words) beats beta's; p4: beta's boxed one (8 words) beats its "Answer:" twin (9)
    assert [t for t in train if t[:2] in ("p1", "p4")] == ["p1/alpha/s1", "p4/beta/s1"]


def test_switch_validation():
    with pytest.raises(ConfigError):
        TeachersConfig(quota={"a": -1})
    with pytest.raises(ConfigError, match="curate.teachers.share"):
        TeachersConfig(share={"a": 0})
    with pytest.raises(ConfigError, match="curate.teachers.share"):
        TeachersConfig(share={"a": -1, "b": 2})
    with pytest.raises(ConfigError):
        SelfConsistencyConfig(min_share=0)
    with pytest.raises(ConfigError):
        CurateConfig(dedup_jaccard=1.5)
    with pytest.raises(ConfigError):
        DecontaminateConfig(ngram=0)


def test_longest_correct_of_k(tmp_path):
    m, train, _, rejected, _ = golden(tmp_path, length=LengthConfig(longest=1, unit="chars"), max_per_problem=5)
    # the padded rationales of p1 and p4 are the longest; single-candidate problems keep theirs
    assert train == ["p1/alpha/s0", "p2/alpha/h2", "p3/alpha/s0", "p4/alpha/s0", "p5/alpha/s0"]
    assert {k for k, v in rejected.items() if v == "not_longest"} == {"p1/alpha/s1", "p1/beta/s1",
                                                                      "p4/beta/s0", "p4/beta/s1"}
    assert m["policy_reports"]["not_longest"] == {"n": 1, "unit": "chars"}
    with pytest.raises(ConfigError, match="shortest or longest"):
        LengthConfig(shortest=1, longest=1)


def test_random_pick_is_seeded_per_problem_and_keeps_n():
    from reasondistill.curate.random_pick import RandomPick

    def traces(pid, n):
        return [Trace(id=f"{pid}/t/s{i}", problem_id=pid, teacher="t", sample_idx=i, reasoning="", answer_text="1",
                      raw=f"r{i}", finish_reason="stop") for i in range(n)]
    p, q = Problem("p", "hand", "?", "1"), Problem("q", "hand", "?", "1")
    picks = {seed: RandomPick(2, seed).select(p, traces("p", 8), {}) for seed in range(6)}
    for kept, dropped in picks.values():
        assert len(kept) == 2 and len(dropped) == 6 and {r for _, r in dropped} == {"not_drawn"}
        assert [t.sample_idx for t in kept] == sorted(t.sample_idx for t in kept)  # survivors keep their order
    assert len({tuple(t.id for t in kept) for kept, _ in picks.values()}) > 1  # the seed matters
    assert RandomPick(2, 0).select(p, traces("p", 8), {})[0] == picks[0][0]  # and fixes the draw
    # a problem's draw depends on its own id only, not on the other problems
    assert RandomPick(2, 0).select(q, traces("q", 8), {})[0] == RandomPick(2, 0).select(q, traces("q", 8), {})[0]
    assert RandomPick(5, 0).select(p, traces("p", 3), {})[0] == traces("p", 3)  # fewer than n: all kept


def test_random_switch_in_the_stage(tmp_path):
    m, train, _, rejected, _ = golden(tmp_path, random=1, max_per_problem=5)
    assert len(train) == 5 and len({t.split("/")[0] for t in train}) == 5  # one per problem with a candidate
    assert sum(v == "not_drawn" for v in rejected.values()) == 4  # p1's and p4's other two candidates
    assert m["policy_reports"]["not_drawn"] == {"n": 1, "seed": 0}
