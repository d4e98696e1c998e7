from reasondistill.records import Problem
from reasondistill.backends.base import Completion, Request, SamplingParams
from reasondistill.backends.cache import SampleCache, sample_key

P = Problem("p1", "t", "1 + 1 =", "2")


def req(idx=0, text="1 + 1 ="):
    return Request(P, ({"role": "user", "content": text},), idx)


def test_key_depends_on_every_part():
    s = SamplingParams()
    base = sample_key("m", req(), s)
    assert base == sample_key("m", req(), SamplingParams())
    assert base != sample_key("other-model", req(), s)
    assert base != sample_key("m", req(idx=1), s)
    assert base != sample_key("m", req(text="2 + 2 ="), s)
    assert base != sample_key("m", req(), SamplingParams(temperature=0.5))
    assert base != sample_key("m", req(), SamplingParams(seed=1))


def test_roundtrip_and_reload(tmp_path):
    c = SampleCache(tmp_path, "m")
    c.put_many([("k1", Completion("a", "stop", 1, 2)), ("k2", Completion("b", "length", 3, 4))])
    again = SampleCache(tmp_path, "m")
    assert len(again) == 2
    assert again.get("k2") == Completion("b", "length", 3, 4)
    assert SampleCache(tmp_path, "other").get("k1") is None


def test_line_cut_by_kill_is_ignored_and_next_write_starts_clean(tmp_path):
    c = SampleCache(tmp_path, "m")
    c.put_many([("k1", Completion("a", "stop"))])
    with c.path.open("a") as fh:
        fh.write('{"key": "k2", "completion": {"text": "half')  # no newline: killed mid-write
    again = SampleCache(tmp_path, "m")
    assert again.corrupt_lines == 1 and "k1" in again and "k2" not in again
    again.put_many([("k3", Completion("c", "stop"))])
    third = SampleCache(tmp_path, "m")
    assert "k3" in third and third.corrupt_lines == 1
