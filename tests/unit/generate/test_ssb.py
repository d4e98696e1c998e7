"""SSB hints: the most common wrong student answer goes into the teacher's prompt, the traces
record it, and offline KD lines the hinted teacher's logprobs up behind the plain prompt."""

from __future__ import annotations

import pytest

from reasondistill import generate, io
from reasondistill.backends import BackendPool
from reasondistill.config import GenerateConfig, ProbeConfig, PromptConfig, BackendConfig, VerifyConfig
from reasondistill.errors import ConfigError, InputError
from reasondistill.generate import ssb
from reasondistill.generate.student_answers import StudentAnswers, read_probe
from reasondistill.prompts import ssb_prompt, student_messages
from reasondistill.records import EvalSample, Problem, Trace
from tests.helpers import recipe, stage_layout
from tests.unit.generate.scripted import PROBLEMS, ScriptedBackend


def sample(pid, idx, passed, extracted, text=None):
    return EvalSample(problem_id=pid, model="student", sample_idx=idx, score=float(passed), passed=passed,
                      extracted=extracted, formatted=extracted is not None, completion_tokens=5,
                      text=text if text is not None else f"work\nAnswer: {extracted}")


def test_most_common_wrong_answer_normalises_and_ties_go_to_the_first_seen():
    answers = StudentAnswers("p", (sample("p", 0, False, "7"), sample("p", 1, False, "1,000"),
                                   sample("p", 2, True, "12"), sample("p", 3, True, "12"),
                                   sample("p", 4, False, "1000."), sample("p", 5, False, None, "no idea")))
    answer, first = answers.most_common_wrong()
    assert (answer, first.sample_idx) == ("1,000", 1)  # "1,000" and "1000." are one answer, seen twice
    tie = StudentAnswers("p", (sample("p", 0, False, "5"), sample("p", 1, False, "6")))
    assert tie.most_common_wrong()[0] == "5"  # the greedy answer wins a tie
    assert StudentAnswers("p", (sample("p", 0, True, "3"), sample("p", 1, False, None, "hm"))).most_common_wrong() is None
    assert answers.pass_rate == pytest.approx(2 / 6)


def test_wrong_answers_need_a_gold_answer_and_a_stated_wrong_one():
    problems = [Problem("a", "t", "q", "1"), Problem("b", "t", "q", ""), Problem("c", "t", "q", "3"),
                Problem("d", "t", "q", "4")]
    answers = {"a": StudentAnswers("a", (sample("a", 0, False, "2"),)),
               "b": StudentAnswers("b", (sample("b", 0, False, "2"),)),  # no gold: nothing to hint
               "c": StudentAnswers("c", (sample("c", 0, True, "3"),)),  # always right
               "d": StudentAnswers("d", ())}  # never asked
    assert ssb.wrong_answers(problems, answers) == {"a": "2"}


def test_ssb_prompt_shows_gold_and_wrong_answer_and_a_custom_template(tmp_path):
    p = Problem("a", "t", "What is {x} + 1?", "5")  # braces in a question stay as they are
    text = ssb_prompt(p, "6", PromptConfig())
    assert text.startswith("What is {x} + 1?") and "correct answer is 5" in text and "wrong answer is 6" in text
    custom = tmp_path / "ssb.txt"
    custom.write_text("{question} | gold {hint} | not {wrong}")
    assert ssb_prompt(p, "6", PromptConfig(ssb_template=str(custom))) == "What is {x} + 1? | gold 5 | not 6"


def test_probe_samples_for_unknown_problems_name_the_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    io.write_jsonl(path, [sample("a", 0, False, "2"), sample("zz", 0, False, "2")])
    with pytest.raises(InputError, match="zz") as e:
        read_probe(path, [Problem("a", "t", "q", "1")])
    assert ":2" in str(e.value)
    with pytest.raises(ConfigError, match="probe stage"):
        read_probe(tmp_path / "missing.jsonl", [])


def write_inputs(tmp_path):
    problems = [Problem(pid, "hand", q, a) for pid, q, a in PROBLEMS]
    io.write_jsonl(tmp_path / "problems.jsonl", problems)
    probe = [sample("p0", 0, True, "10"), sample("p0", 1, True, "10"),
             sample("p1", 0, False, "12"), sample("p1", 1, False, "13"), sample("p1", 2, False, "12"),
             sample("p2", 0, False, None, "I give up"), sample("p2", 1, True, "12"),
             sample("p3", 0, True, "13")]  # p4: never probed
    io.write_jsonl(tmp_path / "probe.jsonl", probe)
    return problems


def run_generate(tmp_path, teacher, **gen):
    tcfg = BackendConfig(backend="dummy")  # the key the scripted teacher is served under
    cfg = GenerateConfig(**{"samples": 2, "hints": "ssb", "cache_dir": str(tmp_path / "cache"), **gen})
    layout = stage_layout(tmp_path / "gen", "generate", train_problems=tmp_path / "problems.jsonl",
                          probe_samples=tmp_path / "probe.jsonl")
    with BackendPool() as pool:
        pool.add(tcfg, teacher)
        m = generate.run(recipe(teacher=tcfg, generate=cfg, verify=VerifyConfig()), layout, pool=pool)
    return m, io.read_records(layout.traces, Trace), layout


def test_generate_asks_with_the_hint_only_where_the_student_went_wrong(tmp_path):
    write_inputs(tmp_path)
    teacher = ScriptedBackend()
    m, traces, _ = run_generate(tmp_path, teacher)
    asked = {(pid, idx): (kind, text) for pid, kind, idx, text in teacher.seen}
    assert {pid for (pid, _), (kind, _) in asked.items() if kind == "ssb"} == {"p1"}
    kind, text = asked[("p1", 0)]
    assert "correct answer is 11" in text and "wrong answer is 12" in text  # 12 twice beats 13 once
    # p2 stated no wrong answer (and passed once), p0 and p3 never went wrong, p4 was never probed: plain;
    # p2's plain samples both miss (x, y), so STaR rationalizes it with the gold answer alone
    assert {key: kind for key, (kind, _) in asked.items() if key[0] != "p1"} == {
        ("p0", 0): "plain", ("p0", 1): "plain", ("p2", 0): "plain", ("p2", 1): "plain", ("p2", 2): "star",
        ("p3", 0): "plain", ("p3", 1): "plain", ("p4", 0): "plain", ("p4", 1): "plain"}
    ssb_traces = [t for t in traces if t.meta.get("hint") == "ssb"]
    assert [t.id for t in ssb_traces] == ["p1/scripted/h0", "p1/scripted/h1"]
    assert all(t.hinted and t.meta == {"hint": "ssb", "wrong_answer": "12"} for t in ssb_traces)
    assert [t.id for t in traces if t.hinted and t not in ssb_traces] == ["p2/scripted/h2"]  # STaR: no SSB meta
    assert m["outputs"]["ssb"] == {"problems_probed": 4, "with_wrong_answer": 1, "hinted_traces": 2}
    assert m["config"]["generate"]["hints"] == "ssb" and m["config"]["generate"]["tailored"] is False
    # solved without a hint: p0, p3 and p4 (sample 0); p1's hinted traces do not count
    assert m["outputs"]["n_hinted"] == 1 and m["outputs"]["problems_solved_unhinted"] == 3


def test_changed_probe_answers_rerun_generation(tmp_path):
    write_inputs(tmp_path)
    run_generate(tmp_path, ScriptedBackend())
    again = run_generate(tmp_path, ScriptedBackend())[0]
    assert again["this_run"]["skipped"]
    io.write_jsonl(tmp_path / "probe.jsonl", [sample("p3", 0, False, "99")])
    m, traces, _ = run_generate(tmp_path, ScriptedBackend())
    assert not m["this_run"]["skipped"]
    assert {t.problem_id: t.meta["wrong_answer"] for t in traces if t.meta.get("hint") == "ssb"} == {"p3": "99"}


def test_switches_are_off_by_default_and_checked():
    cfg = GenerateConfig()
    assert cfg.hints == "none" and not cfg.tailored and not cfg.probes
    with pytest.raises(ConfigError, match="generate.hints"):
        GenerateConfig(hints="yes")
    with pytest.raises(ConfigError, match="style=cot"):
        GenerateConfig(hints="ssb", prompt=PromptConfig(style="pot"))
    with pytest.raises(ConfigError, match="fail_below"):
        ProbeConfig(fail_below=0)
    with pytest.raises(ConfigError, match="probe.model"):
        ProbeConfig(model="someone")


def test_kd_trains_the_plain_prompt_on_the_hinted_teachers_logprobs(tmp_path, smollm2_dir):
    """The store holds one row per COMPLETION token of the hinted generation (nothing of its longer
    prompt), so the same rows line up behind any prompt: offline KD puts them right after the
    plain student prompt, exactly as it would behind the hinted one."""
    from transformers import AutoTokenizer

    from reasondistill.curate.run import example
    from reasondistill.logprobs import LogprobReader
    from reasondistill.scoring import encode
    from reasondistill.train import kd

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    problems = {p.id: p for p in write_inputs(tmp_path)}
    m, traces, layout = run_generate(tmp_path, ScriptedBackend(tok), top_logprobs=3)
    reader = LogprobReader(layout.logprobs)
    trace = next(t for t in traces if t.hinted)
    completion_ids = tok.encode(trace.raw, add_special_tokens=False)
    tokens, ids, lps, _ = reader.get(trace.id)
    assert tokens.tolist() == completion_ids and ids[:, 0].tolist() == completion_ids
    assert lps[:, 0].tolist() == pytest.approx([-0.25] * len(completion_ids))

    plain = example(problems[trace.problem_id], trace, PromptConfig())
    assert plain.prompt == student_messages(problems[trace.problem_id])
    hinted_prompt = [{"role": "user", "content": ssb_prompt(problems[trace.problem_id], "12", PromptConfig())}]
    hinted = type(plain)(prompt=hinted_prompt, completion=plain.completion, meta=plain.meta)
    (f_plain, f_hinted), counts = kd.tokenize([plain, hinted], tok, reader, top_k=3, max_length=512)
    n_plain = len(encode(tok, plain.prompt, plain.completion)[0])
    n_hinted = len(encode(tok, hinted_prompt, plain.completion)[0])
    assert n_hinted > n_plain
    for f, n in ((f_plain, n_plain), (f_hinted, n_hinted)):
        where = f["kd_mask"].nonzero().flatten().tolist()
        assert where == list(range(n - 1, n - 1 + len(completion_ids)))  # the step before each completion token
        assert f["teacher_ids"][f["kd_mask"]][:, 0].tolist() == completion_ids
        assert f["input_ids"][n: n + len(completion_ids)].tolist() == completion_ids
    assert (f_plain["teacher_logprobs"][f_plain["kd_mask"]] == f_hinted["teacher_logprobs"][f_hinted["kd_mask"]]).all()
    assert counts["n_kd_tokens"] == 2 * len(completion_ids)
