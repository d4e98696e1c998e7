"""Greedy evaluation speed-ups: the per-row stop after the answer line, length-bucketed batches,
and the sample cache telling the stopped samples apart."""

from __future__ import annotations

import dataclasses

import pytest

from reasondistill.backends.base import Request, SamplingParams
from reasondistill.backends.cache import sample_key
from reasondistill.backends.sampling import _Draw, by_length, draw
from reasondistill.grading.answers import answer_line_end
from reasondistill.records import Problem

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=40)

# what each row of the scripted model writes, in batch order
SCRIPTS = [
    "Two plus two.\nAnswer: 4\nAnd then it rambles on for many more words here",
    "First 3, then 4, so the total is 7 and nothing else.\nAnswer: 7\nextra words",
    "It never writes a final line at all, it just keeps on going and going and going",
]


def test_answer_line_end_needs_a_value_and_its_newline() -> None:
    assert answer_line_end("work\nAnswer: 42\nmore") == len("work\nAnswer: 42")
    assert answer_line_end("**Final Answer:** 3/4\n") == len("**Final Answer:** 3/4")
    assert answer_line_end("work\nAnswer: 42") is None  # the line may go on (42 -> 421)
    assert answer_line_end("Answer:\n1 2\n3 4\n") is None  # a multi-line answer: no early stop
    assert answer_line_end("The answer: 5\n") is None  # not an answer line for the verifier either
    assert answer_line_end("Answer: 1\nAnswer: 2\n") == len("Answer: 1")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from reasondistill.backends.transformers import TransformersBackend
    return TransformersBackend(str(tiny_model_dir), dtype="float32", device="cpu", batch_size=8)


def _scripted(backend, scripts: list[str], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``backend.model.generate`` write ``scripts[row]`` (then EOS-free filler) greedily; the
    tokens each row writes are returned through the list, filled per call with the prompt width."""
    from transformers import LogitsProcessor, LogitsProcessorList

    tok = backend.tokenizer
    ids = [tok(s, add_special_tokens=False)["input_ids"] for s in scripts]
    filler = tok(" x", add_special_tokens=False)["input_ids"][0]
    width: list[int] = []

    class Script(LogitsProcessor):
        def __call__(self, input_ids, scores):
            step = input_ids.shape[1] - width[-1]
            scores[:] = -1e9
            for row in range(input_ids.shape[0]):
                scores[row, ids[row][step] if step < len(ids[row]) else filler] = 0.0
            return scores

    real = backend.model.generate

    def generate(**kwargs):
        width.append(kwargs["input_ids"].shape[1])
        return real(**kwargs, logits_processor=LogitsProcessorList([Script()]))

    monkeypatch.setattr(backend.model, "generate", generate)
    return width


def _requests(n: int) -> list[Request]:
    return [Request(Problem(f"p{i}", "t", "What is 2+2?" + " Think." * i, "4"),
                    ({"role": "user", "content": "What is 2+2?" + " Think." * i},), 0) for i in range(n)]


def test_rows_stop_independently_and_text_ends_at_the_answer_line(tiny, monkeypatch) -> None:
    from reasondistill.backends.answer_stop import AnswerLineStop

    _scripted(tiny, SCRIPTS, monkeypatch)
    reqs = _requests(3)
    full = tiny.complete(reqs, GREEDY)
    stopped = tiny.complete(reqs, dataclasses.replace(GREEDY, stop_at_answer=True))
    for script, f, s in zip(SCRIPTS, full, stopped):
        assert f.finish_reason == "length" and f.text.startswith(script)
        end = answer_line_end(f.text)
        if end is None:  # no answer line: the row runs to the limit, as without the stop
            assert (s.text, s.finish_reason, s.completion_tokens) == (f.text, "length", f.completion_tokens)
        else:  # the same text up to the end of the answer line, and no token decoded past it
            assert s.text == f.text[:end] and s.text.endswith(("Answer: 4", "Answer: 7"))
            assert s.finish_reason == "stop"
            assert s.completion_tokens < f.completion_tokens
    assert stopped[0].completion_tokens < stopped[1].completion_tokens  # row 0 stopped first, row 1 went on

    # the criterion itself: one bool per row, True only for the rows whose answer line is complete
    import torch
    tok = tiny.tokenizer
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in ("x\nAnswer: 5\n", "x\nAnswer: 5", "Answer:\n")]
    width = max(map(len, rows))
    batch = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    assert AnswerLineStop(tok, prompt_width=0)(batch, None).tolist() == [True, False, False]


def test_bucketed_batches_give_the_unbucketed_results_in_input_order(tiny, monkeypatch) -> None:
    reqs = _requests(6)[::-1] + _requests(6)[:2]  # long prompts first: bucketing must reorder them
    monkeypatch.setattr(tiny, "batch_size", 3)
    order = by_length(tiny, reqs)
    assert order != list(range(len(reqs))) and sorted(order) == list(range(len(reqs)))
    assert [tiny.prompt_length(reqs[i]) for i in order] == sorted(tiny.prompt_length(r) for r in reqs)
    assert _Draw(tiny, reqs, GREEDY, None).batches == [order[:3], order[3:6], order[6:]]
    sampled = dataclasses.replace(GREEDY, temperature=0.7)  # a sampled batch is seeded by content: kept
    assert _Draw(tiny, reqs, sampled, None).batches == [[0, 1, 2], [3, 4, 5], [6, 7]]

    bucketed, _ = draw(tiny, reqs, GREEDY)
    monkeypatch.setattr(tiny, "prompt_length", lambda r: None)
    plain, _ = draw(tiny, reqs, GREEDY)
    one_by_one = [tiny.complete([r], GREEDY)[0] for r in reqs]
    assert [c.text for c in bucketed] == [c.text for c in plain] == [c.text for c in one_by_one]
    assert [c.prompt_tokens for c in bucketed] == [c.prompt_tokens for c in one_by_one]


def test_cache_key_tells_stopped_samples_apart() -> None:
    req = _requests(1)[0]
    on = dataclasses.replace(GREEDY, stop_at_answer=True)
    assert sample_key("m", req, on) != sample_key("m", req, GREEDY)
    # unset, the key is what it was before the field existed: earlier caches keep their samples
    before = {f.name: getattr(GREEDY, f.name) for f in dataclasses.fields(GREEDY) if f.name != "stop_at_answer"}
    assert GREEDY.key() == {**before, "stop": []}
    assert on.key() == {**before, "stop": [], "stop_at_answer": True}
