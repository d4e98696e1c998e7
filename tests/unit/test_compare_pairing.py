"""Which compare entries are compared seed by seed: decided from the recipe (compare.seeds_paired)."""

from __future__ import annotations

import pytest

from reasondistill.compare import CompareEntry, lineage, seeds_paired

ENTRIES = [
    CompareEntry("sft"),
    CompareEntry("sft-avg", train={"average_last": 0.5}),  # same data and objective, another option
    CompareEntry("sft-tokens", match_tokens="sft"),
    CompareEntry("random", curate={"random": 1}),  # its own curated traces
    CompareEntry("random-2", curate={"random": 1}),
    CompareEntry("kd", method="kd"),  # one row per trace, like SFT: the same traces in the same order
    CompareEntry("kd-random", method="kd", curate={"random": 1}),
    CompareEntry("multitask", method="multitask"),  # rationale and label rows: another dataset
    CompareEntry("kd+sft", init="kd"),
    CompareEntry("loop", loop={"rounds": 2}),
    CompareEntry("sft+sft", init="sft"),
    CompareEntry("sft+redi", method="redi", init="sft"),
    CompareEntry("sft+redi+dpo", method="dpo", init="sft+redi"),
    CompareEntry("random+redi", method="redi", init="random"),
]
BY_NAME = {e.name: e for e in ENTRIES}


@pytest.mark.parametrize(("x", "y", "paired"), [
    ("sft-avg", "sft", True),
    ("sft-tokens", "sft", True),
    ("random-2", "random", True),  # the same override curates the same traces
    ("random", "sft", False),
    ("kd", "sft", True),  # two objectives that train one row per trace (trace_rows)
    ("kd", "sft-avg", True),
    ("kd-random", "sft", False),  # other traces
    ("kd-random", "random", True),  # the same override, read in the same order
    ("multitask", "sft", False),
    ("multitask", "kd", False),
    ("kd+sft", "sft+sft", False),  # parents trained apart: neither shares a checkpoint with the other
    ("loop", "sft", False),
    ("sft+sft", "sft", True),  # continues its checkpoint
    ("sft+redi", "sft+sft", True),  # siblings on one parent
    ("sft+redi+dpo", "sft", True),  # two links down
    ("sft+redi+dpo", "sft+sft", True),
    ("random+redi", "sft", False),  # another parent
    ("random+redi", "random", True),
])
def test_seeds_are_paired_by_design(x, y, paired):
    assert seeds_paired(BY_NAME[x], BY_NAME[y], BY_NAME) is paired
    assert seeds_paired(BY_NAME[y], BY_NAME[x], BY_NAME) is paired


def test_lineage_follows_init_to_a_student_trained_from_scratch():
    assert lineage(BY_NAME["sft+redi+dpo"], BY_NAME) == ["sft+redi+dpo", "sft+redi", "sft"]
    assert lineage(BY_NAME["sft"], BY_NAME) == ["sft"]
