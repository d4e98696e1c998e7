"""A loop's per-round table and accuracy plot in report.md / report.html, drawn from report["loop"]."""

import base64
import re

from reasondistill.report import plots
from reasondistill.report.format import round_rows
from reasondistill.report.html import render
from reasondistill.report.markdown import render as render_md

LOOP = {"baseline": {"accuracy": 0.2, "ci95": [0.16, 0.25], "n_eval": 300},
        "rounds": [{"round": 1, "teacher": "runs/default/train/model", "accuracy": 0.41, "ci95": [0.36, 0.47],
                    "problems_picked": 180, "traces_added": 150, "train_examples": 150, "wall_seconds": 640.0},
                   {"round": 2, "teacher": "runs/default/train/model", "accuracy": 0.47, "ci95": [0.41, 0.53],
                    "problems_picked": 120, "traces_added": 90, "train_examples": 240, "wall_seconds": 90.0}]}


def test_round_rows_start_with_the_untrained_student():
    rows = round_rows({"loop": LOOP})
    assert [r[0] for r in rows] == ["0 (untrained)", "1", "2"]
    assert rows[2][2:7] == ["47.0%", "[41.0%, 53.0%]", "120", "90", "240"] and rows[2][7] == "1.5 min"
    assert round_rows({}) == []


def test_markdown_and_html_show_the_rounds(tmp_path):
    md = render_md({"task": "chain_sum", "loop": LOOP})
    assert "## Rounds (reasondistill loop)" in md and "| 2 | runs/default/train/model | 47.0% |" in md
    page = render({"task": "chain_sum", "loop": LOOP}, tmp_path)
    section = page.split("Rounds (reasondistill loop)", 1)[1].split("<h2>", 1)[0]
    assert "Held-out accuracy per round" in section and "<td>240</td>" in section
    if plots.available():
        png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', section).group(1))
        assert png.startswith(b"\x89PNG")
    assert "Rounds" not in render({"task": "chain_sum"}, tmp_path)


def test_rounds_plot_needs_an_evaluated_round():
    assert plots.rounds_png({"rounds": []}) is None
    if plots.available():
        assert plots.rounds_png({"rounds": LOOP["rounds"][:1]}).startswith(b"\x89PNG")
