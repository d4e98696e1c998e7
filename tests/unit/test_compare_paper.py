"""A `reproduce-*` entry carries its seed paper's figure; the row says whether ours reproduced it."""

from __future__ import annotations

import pytest

from reasondistill import compare
from reasondistill.config import Recipe, build
from reasondistill.errors import ConfigError


@pytest.mark.parametrize("verdict,paper,expected", [
    ("better", 2.7, "reproduced"),
    ("worse", -7.1, "reproduced"),
    ("worse", 2.7, "reversed"),
    ("better", -7.1, "reversed"),
    ("no detectable difference", 2.7, "no detectable difference"),
    ("better", 0.0, "no detectable difference"),
])
def test_reproduction_compares_our_verdict_with_the_papers_sign(verdict, paper, expected):
    assert compare.reproduction(verdict, paper) == expected


@pytest.mark.parametrize("paper", [{"delta": "up"}, {"source": "x"}, {"delta": 1.0, "model": "x"}, {"delta": True}])
def test_a_malformed_paper_figure_is_refused_when_the_recipe_is_read(paper):
    recipe = build(Recipe, {"compare": {"entries": [{"name": "a"}, {"name": "b", "paper": paper}]}})
    with pytest.raises(ConfigError, match=r"compare.b.paper must be \{delta: "):
        compare.entries(recipe)


def test_the_table_puts_the_papers_figure_beside_ours():
    diff = {"reference": "short", "delta": -0.052, "ci95": [-0.081, -0.023], "verdict": "worse", "n": 300}
    rows = [{"objective": "short", "accuracy": 0.165, "ci95": [0.13, 0.20], "tokens_per_answer": 35.8,
             "peak_rss_mb": 4800, "seeds": 3},
            {"objective": "long", "accuracy": 0.113, "ci95": [0.08, 0.15], "tokens_per_answer": 120.0,
             "peak_rss_mb": 4800, "seeds": 3, "vs_reference": diff,
             "paper": {"delta": -7.1, "source": "arXiv 2502.12143"}, "reproduction": "reproduced"}]
    table = compare.format_table(rows)
    assert "long vs short: ours -5.2 points [-8.1, -2.3], paper -7.1 (arXiv 2502.12143): reproduced" in table
