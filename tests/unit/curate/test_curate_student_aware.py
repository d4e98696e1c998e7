"""Student-aware selection and the shared scoring module, on tiny models.

``copy_model_dir`` is the tiny Llama of ``conftest.py`` made into a model whose likelihood order is
known: with its attention and MLP outputs zeroed, the last hidden state is the current token's own
(normalised) embedding, and with large tied embeddings the logits then put almost all probability
on repeating the current token. A trace that repeats one token (`` so so so``, one token each)
is therefore very likely for it, one of random characters very unlikely, and one half of each in
between.
"""

from __future__ import annotations

import pytest

from reasondistill import curate as curate_stage
from reasondistill.config import CurateConfig, PromptConfig
from reasondistill.curate.student_aware import StudentAwareConfig
from reasondistill.io import iter_jsonl, read_records, write_jsonl
from reasondistill.prompts import student_messages
from reasondistill.records import Problem, Trace, TrainExample, Verdict

from tests.helpers import recipe, stage_layout

PROBLEM = Problem("p", "hand", "What is 7 + 7?", "14")
REPEAT = "so so so so so so so so so so so so so so so so so so so so so so so so\nAnswer: 14"
HALF = "so so so so so so so so so so so so q#8Zx!L@w3$Kp^Vn&b%Tj\nAnswer: 14"
NOISE = "q#8Zx!L@w3$Kp^Vn&b%Tj*Rm)Gc(Ys?Hd;Ue:Wf<Ik>Ol|\nAnswer: 14"


@pytest.fixture(scope="module")
def copy_model_dir(tiny_model_dir, tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.get_input_embeddings().weight.mul_(50.0)  # tied: the LM head grows with it
    out = tmp_path_factory.mktemp("copy-llama")
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def conversation(raw):
    return student_messages(PROBLEM, PromptConfig()), [{"role": "assistant", "content": raw}]


def test_scoring_orders_by_likelihood(copy_model_dir):
    from reasondistill.scoring import Scorer

    scorer = Scorer.load(str(copy_model_dir), dtype="float32", device="cpu")
    repeat, half, noise = scorer.score([conversation(t) for t in (REPEAT, HALF, NOISE)], batch_size=3)
    assert repeat["mean_logprob"] > half["mean_logprob"] > noise["mean_logprob"]
    assert repeat["low_prob_share"] < half["low_prob_share"] < noise["low_prob_share"]
    assert all(s["tokens"] > 5 for s in (repeat, half, noise))


def test_batched_scores_match_one_at_a_time(tiny_model_dir):
    """Padding does not leak into the scores: a batch of different lengths gives each sequence the
    log-probabilities it gets alone (checked against a plain full-logits computation)."""
    import torch

    from reasondistill.scoring import Scorer, completion_logprobs, encode

    scorer = Scorer.load(str(tiny_model_dir), dtype="float32", device="cpu")
    convs = [conversation(t) for t in (REPEAT, "Answer: 14", NOISE, HALF)]
    batched = completion_logprobs(scorer.model, scorer.tokenizer, convs, batch_size=4)
    for conv, got in zip(convs, batched):
        prompt_ids, full_ids = encode(scorer.tokenizer, *conv)
        with torch.no_grad():
            logits = scorer.model(input_ids=torch.tensor([full_ids])).logits[0]
        logp = torch.log_softmax(logits, -1)
        want = [logp[i - 1, full_ids[i]].item() for i in range(len(prompt_ids), len(full_ids))]
        assert got == pytest.approx(want, abs=1e-4)
    cut = completion_logprobs(scorer.model, scorer.tokenizer, convs[:1], max_length=len(encode(
        scorer.tokenizer, *convs[0])[0]) + 3)
    assert len(cut[0]) == 3


def _files(tmp_path):
    traces = [Trace(f"p/t/s{i}", "p", "t", i, "", "", raw, "stop") for i, raw in enumerate((NOISE, HALF, REPEAT))]
    traces.append(Trace("p/t/s3", "p", "t", 3, "", "", "7 7 7\nAnswer: 15", "stop"))  # wrong: never scored
    write_jsonl(tmp_path / "problems.jsonl", [PROBLEM])
    write_jsonl(tmp_path / "traces.jsonl", traces)
    write_jsonl(tmp_path / "verdicts.jsonl", [Verdict(t.id, "p", "math", float(i < 3), i < 3, "")
                                              for i, t in enumerate(traces)])
    return dict(train_problems=tmp_path / "problems.jsonl", traces=tmp_path / "traces.jsonl",
                verdicts=tmp_path / "verdicts.jsonl")


def curate(tmp_path, out, model, **opts):
    cfg = CurateConfig(max_per_problem=5, student_aware=StudentAwareConfig(model=str(model), dtype="float32",
                                                                           device="cpu", **opts))
    m = curate_stage.run(recipe(curate=cfg), stage_layout(tmp_path / out, "curate", **_files(tmp_path)))
    train = read_records(tmp_path / out / "train.jsonl", TrainExample, allow_empty=True)
    rejected = {o["trace_id"]: o for _, o in iter_jsonl(tmp_path / out / "rejected.jsonl", allow_empty=True)}
    return m, train, rejected


def test_student_aware_top_keeps_the_most_likely(tmp_path, copy_model_dir):
    m, train, rejected = curate(tmp_path, "top1", copy_model_dir, top=1)
    assert [e.meta["trace_id"] for e in train] == ["p/t/s2"]  # the repeating one
    assert {k: v["reason"] for k, v in rejected.items()} == {"p/t/s0": "not_student_top",
                                                             "p/t/s1": "not_student_top"}
    meta = train[0].meta
    assert meta["student_mean_logprob"] > rejected["p/t/s1"]["notes"]["student_mean_logprob"] > \
        rejected["p/t/s0"]["notes"]["student_mean_logprob"]
    assert 0 <= meta["student_low_prob_share"] <= 1 and meta["student_tokens"] > 5
    report = m["outputs"]["policy_reports"]["unlikely_for_student"]
    assert report["scored"] == 3 and report["top"] == 1 and report["identity"]
    assert m["config"]["policies"]["student_aware"]["student"] == report["identity"]

    _, train, _ = curate(tmp_path, "top2", copy_model_dir, top=2)
    assert [e.meta["trace_id"] for e in train] == ["p/t/s1", "p/t/s2"]  # survivors keep the best-first order


def test_student_aware_thresholds(tmp_path, copy_model_dir):
    _, train, _ = curate(tmp_path, "all", copy_model_dir, min_mean_logprob=-1e9)
    scores = {e.meta["trace_id"]: e.meta["student_mean_logprob"] for e in train}
    shares = {e.meta["trace_id"]: e.meta["student_low_prob_share"] for e in train}
    assert len(scores) == 3
    bar = (scores["p/t/s1"] + scores["p/t/s0"]) / 2  # between HALF and NOISE
    _, train, rejected = curate(tmp_path, "bar", copy_model_dir, min_mean_logprob=bar)
    assert sorted(e.meta["trace_id"] for e in train) == ["p/t/s1", "p/t/s2"]
    assert rejected["p/t/s0"]["reason"] == "unlikely_for_student"
    _, train, rejected = curate(tmp_path, "share", copy_model_dir,
                                max_low_prob_share=(shares["p/t/s2"] + shares["p/t/s1"]) / 2)
    assert [e.meta["trace_id"] for e in train] == ["p/t/s2"]
    assert rejected["p/t/s0"]["reason"] == rejected["p/t/s1"]["reason"] == "unlikely_for_student"


def test_student_aware_config():
    from reasondistill.errors import ConfigError

    assert not StudentAwareConfig().on and StudentAwareConfig(top=2).on
    with pytest.raises(ConfigError):
        StudentAwareConfig(top=0)
    with pytest.raises(ConfigError):
        StudentAwareConfig(low_prob=1.5)
