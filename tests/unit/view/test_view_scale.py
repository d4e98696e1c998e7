"""The trace browser stays responsive on a 100k-trace run folder: the server filters and pages,
so one filtered page takes well under a second (``benchmarks/view_100k.py`` prints the figures)."""

import time

import pytest
from fake_run import make_run

from reasondistill.view import Index


@pytest.mark.slow
def test_a_filtered_page_of_100k_traces_is_fast(tmp_path):
    run = make_run(tmp_path / "run", n_train=25_000, samples=4, n_eval=1000, plant={50_000: "purple-armadillo"})
    index = Index.build(run.root)
    assert len(index.rows) == 103_000
    for params in ({"kind": "trace", "result": "incorrect", "source": "llm-a"}, {"q": "purple-armadillo"},
                   {"dmin": "0.5", "lmax": "150", "hinted": "no", "sort": "-tokens"}, {"offset": "90000"}):
        started = time.perf_counter()
        page = index.query({**params, "limit": "50"})
        elapsed = time.perf_counter() - started
        assert page["matched"] > 0 and elapsed < 1.0, (params, elapsed)
