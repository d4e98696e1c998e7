"""`reasondistill view` on a 100k-trace run folder: how long the index takes to build, how much
memory it holds, and how long a filtered page takes over HTTP (the server filters and pages; the
page only ever receives one page of rows).

    python benchmarks/view_100k.py [--traces 100000] [--repeats 5] [--dir /tmp/view-100k]

The synthetic run folder (``tests/unit/view/fake_run.py``: 4 teacher traces per training problem,
with verdicts, curation fates and pass rates, plus 3 x 1000 held-out answers) is written once
and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "unit" / "view")]

from fake_run import make_run  # noqa: E402

from reasondistill.layout import Layout  # noqa: E402
from reasondistill.view import make_server  # noqa: E402

QUERIES = {
    "first page, no filter": "",
    "incorrect traces of one teacher": "kind=trace&result=incorrect&source=llm-a",
    "search (one planted trace)": "q=purple-armadillo",
    "search (common word, many hits)": "q=carry+the+37",
    "hard, short, unhinted, longest first": "dmin=0.5&lmax=150&hinted=no&sort=-tokens",
    "rejected traces, page 100": "fate=rejected&offset=5000",
    "deep page (offset 90000)": "offset=90000",
}


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/reasondistill-view-100k"))
    args = ap.parse_args()

    root = args.dir / f"run-{args.traces}"
    if not Layout(root).traces.is_file():
        started = time.perf_counter()
        make_run(root, n_train=args.traces // 4, samples=4, n_eval=1000, plant={args.traces // 2: "purple-armadillo"})
        print(f"wrote {root} in {time.perf_counter() - started:.1f} s")
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    before = rss_mb()
    started = time.perf_counter()
    server = make_server(root, 0)
    build = time.perf_counter() - started
    index = server.index
    print(f"run folder {size:.0f} MB; index: {len(index.rows):,} rows over {len(index.problems):,} problems "
          f"built in {build:.2f} s, holding {rss_mb() - before:.0f} MB")
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def get(path: str) -> tuple[float, dict]:
        t = time.perf_counter()
        with urllib.request.urlopen(server.url + path, timeout=60) as res:
            body = json.loads(res.read())
        return 1000 * (time.perf_counter() - t), body

    print(f"\n{'query (limit 50)':40s} {'matched':>9s} {'server ms':>10s} {'HTTP ms':>9s} {'next page':>9s}"
          f"  (median of {args.repeats}, uncached; next page: HTTP ms, same filter)")
    for name, query in QUERIES.items():
        runs = []
        for _ in range(args.repeats):
            index.forget_results()  # measure the filtering, not the cache
            runs.append(get(f"api/rows?{query}&limit=50"))
        nxt = get(f"api/rows?{query}&limit=50&offset=50")  # the next page of the same filter: from the cache
        body = runs[-1][1]
        print(f"{name:40s} {body['matched']:>9,} {statistics.median(b['ms'] for _, b in runs):>10.1f} "
              f"{statistics.median(ms for ms, _ in runs):>9.1f} {nxt[0]:>9.1f}")
    rid = index.rows[args.traces // 2].id
    ms = statistics.median(get("api/row?id=" + urllib.request.quote(rid, safe=""))[0] for _ in range(args.repeats))
    print(f"{'open one trace (side by side)':40s} {'':>9s} {'':>10s} {ms:>9.1f}")
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
