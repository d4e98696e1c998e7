import numpy as np
import pytest

from reasondistill.errors import InputError
from reasondistill.records import Trace
from reasondistill.logprobs import (LogprobReader, LogprobWriter, from_completion_logprobs,
                                                  store_traces)


def fake_trace(rng, n_tokens, k, vocab=49152):
    """Per-token top-k logprobs of a random distribution, sorted, as a backend returns them."""
    token_ids = rng.integers(0, vocab, n_tokens)
    ids = np.stack([rng.choice(vocab, k, replace=False) for _ in range(n_tokens)])
    logits = rng.normal(size=(n_tokens, k)) * 3
    lps = np.sort(logits - np.log(np.exp(logits).sum(-1, keepdims=True) * rng.uniform(1.05, 3)), axis=-1)[:, ::-1]
    return token_ids, ids, np.ascontiguousarray(lps)


def test_round_trip_within_fp16_and_bytes_per_token(tmp_path):
    rng = np.random.default_rng(0)
    k = 20
    data = {f"p{i}/t/s{i}": fake_trace(rng, int(rng.integers(1, 200)), k) for i in range(30)}
    with LogprobWriter(tmp_path / "store", k) as w:
        for tid, (tokens, ids, lps) in data.items():
            w.add(tid, tokens, ids, lps)
    r = LogprobReader(tmp_path / "store")
    assert len(r) == 30 and r.k == k
    for tid, (tokens, ids, lps) in data.items():
        t2, i2, l2, tail = r.get(tid)
        assert (t2 == tokens).all() and (i2 == ids).all()
        np.testing.assert_allclose(l2, lps, rtol=1e-3, atol=1e-3)  # fp16
        want_tail = np.log(1 - np.exp(lps).sum(-1))
        np.testing.assert_allclose(tail, want_tail, rtol=1e-3, atol=2e-3)
    assert r.bytes_per_token() <= 150
    # ids below 2**16: uint16 ids, smaller still
    with LogprobWriter(tmp_path / "small", k, vocab_size=49152) as w:
        for tid, (tokens, ids, lps) in data.items():
            w.add(tid, tokens, ids, lps)
    small = LogprobReader(tmp_path / "small")
    assert small.bytes_per_token() < 0.75 * r.bytes_per_token()
    assert (small.get("p3/t/s3")[1] == data["p3/t/s3"][1]).all()


def test_unknown_trace_is_a_key_error_naming_it(tmp_path):
    with LogprobWriter(tmp_path / "s", 2) as w:
        w.add("a", [1], [[1, 2]], [[-0.1, -3.0]])
    with pytest.raises(KeyError, match="'nope/teacher/s0' is not in the logprob store"):
        LogprobReader(tmp_path / "s").get("nope/teacher/s0")


def test_from_completion_logprobs_sorts_cuts_and_computes_tail():
    lp = [{"id": 5, "logprob": -0.5, "top": [[7, -2.0], [5, -0.5], [9, -1.5]]},
          {"id": 1, "logprob": -0.1, "top": [[1, -0.1], [2, -3.0], [3, -4.0]]}]
    tokens, ids, lps, tail = from_completion_logprobs(lp, k=2)
    assert tokens.tolist() == [5, 1] and ids.tolist() == [[5, 9], [1, 2]]
    np.testing.assert_allclose(tail[0], np.log(1 - np.exp(-0.5) - np.exp(-1.5)), rtol=1e-6)
    with pytest.raises(ValueError, match="fewer than k=4"):
        from_completion_logprobs(lp, k=4)


def test_fewer_k_on_read_folds_dropped_mass_into_tail(tmp_path):
    rng = np.random.default_rng(1)
    tokens, ids, lps = fake_trace(rng, 5, 8)
    with LogprobWriter(tmp_path / "s", 8) as w:
        w.add("x", tokens, ids, lps)
    _, i3, l3, tail3 = LogprobReader(tmp_path / "s").get("x", k=3)
    assert (i3 == ids[:, :3]).all()
    total = np.exp(l3.astype(np.float64)).sum(-1) + np.exp(tail3.astype(np.float64))
    np.testing.assert_allclose(total, 1.0, atol=3e-3)


def test_unfinished_store_and_traces_helper(tmp_path):
    w = LogprobWriter(tmp_path / "s", 2)
    w.add("a", [1], [[1, 2]], [[-0.1, -3.0]])
    with pytest.raises(InputError, match="not a finished logprob store"):
        LogprobReader(tmp_path / "s")
    w.close()
    assert LogprobReader(tmp_path / "s").trace_ids() == ["a"]
    traces = [Trace(id=f"t{i}", problem_id="p", teacher="m", sample_idx=i, reasoning="", answer_text="", raw="",
                    finish_reason="stop", logprobs=None if i == 1 else
                    [{"id": 3, "logprob": -0.2, "top": [[3, -0.2], [4, -2.0]]}]) for i in range(3)]
    assert store_traces(traces, tmp_path / "t", k=2) == {"stored": 2, "skipped": 1}
    assert LogprobReader(tmp_path / "t").trace_ids() == ["t0", "t2"]
