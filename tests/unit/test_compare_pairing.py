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
    CompareEntry("kd", method="kd"),  # another objective: another dataset, another order
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
    ("kd", "sft", False),
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
