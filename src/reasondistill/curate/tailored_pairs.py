"""Tailored-learning preference pairs: the student's wrong solution (rejected) against each teacher
rationale written to correct it (chosen) that survived curation, for REDI, DPO and SimPO.

``generate.tailored`` writes the student's wrong solutions to ``student_traces.jsonl``, each
naming its teacher corrections in ``meta.corrections``; a correction counts once it is in the
curated ``train.jsonl`` (verified correct and kept), and pairs with it under the same plain prompt.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..io import line_of, read_records
from ..records import PreferenceExample, Trace, TrainExample

SOURCE = "tailored"


def tailored_pairs(curated_path: str | Path, student_traces_path: str | Path) -> list[PreferenceExample]:
    """One pair per (student wrong trace, kept correction), in student-trace order."""
    kept = {ex.meta.get("trace_id"): ex for ex in read_records(curated_path, TrainExample, allow_empty=True)}
    pairs = []
    for i, wrong in enumerate(read_records(student_traces_path, Trace, allow_empty=True)):
        corrections = wrong.meta.get("corrections")
        if not isinstance(corrections, list):
            raise InputError("meta.corrections is missing (re-run generate with generate.tailored)",
                             file=student_traces_path, line=line_of(student_traces_path, i), field="meta")
        if not wrong.raw.strip():
            continue
        for trace_id in corrections:
            chosen = kept.get(trace_id)
            if chosen is None:
                continue
            pairs.append(PreferenceExample(
                prompt=chosen.prompt, chosen=chosen.completion,
                rejected=[{"role": "assistant", "content": wrong.raw.strip()}],
                meta={"problem_id": wrong.problem_id, "chosen_trace_id": trace_id, "rejected_trace_id": wrong.id,
                      "source": SOURCE}))
    return pairs
