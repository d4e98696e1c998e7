"""`reasondistill view` end to end in headless Chromium (Debian's ``chromium`` driven by Playwright):
the page loads, filters narrow the list, a trace opens beside the students' answers, search finds
a planted string, a planted ``<script>`` is shown as text and never runs, and the run folder is
byte-identical afterwards. A screenshot is saved under the test's tmp dir (its path is printed).

Needs ``pip install playwright`` (the ``test`` extra) and ``apt-get install chromium`` (``.ci/run``);
never ``playwright install``, which downloads browsers.
"""

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from reasondistill.view import Index, make_server
from tests.unit.view.fake_run import make_run

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
NEEDLE = "needle: purple-armadillo-77"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _matched(page, n: int) -> None:
    """Wait until the list says ``n`` rows match."""
    page.wait_for_function("n => document.querySelector('#matched').textContent.startsWith(n.toLocaleString() + ' of')",
                           arg=n, timeout=15_000)


def _first_row_of(page, problem_id: str) -> None:
    """Wait until the first listed row is of ``problem_id``."""
    page.wait_for_function("pid => (document.querySelector('#list tbody tr .pid') || {}).textContent?.startsWith(pid + ' ')",
                           arg=problem_id, timeout=15_000)


def _opened(page, row_id: str) -> None:
    """Wait until the detail pane shows row ``row_id``."""
    page.wait_for_function("id => document.querySelector('#detail-pane code.rowid')?.textContent === id",
                           arg=row_id, timeout=15_000)


def test_trace_browser_in_headless_chromium(tmp_path):
    run = make_run(tmp_path / "run", n_train=120, samples=4, n_eval=40, plant={5: EVIL, 301: NEEDLE})
    before = _hashes(run.root)
    expect = Index.build(run.root)
    total = len(expect.rows)
    n_wrong_a = expect.query({"result": "incorrect", "source": "llm-a"})["matched"]
    assert 0 < n_wrong_a < total

    server = make_server(run.root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    errors: list[str] = []
    shot = tmp_path / "trace-browser.png"
    try:
        with sync_api.sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
                viewport={"width": 1440, "height": 900})
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)

            # the page loads, with the first page of rows from the server
            page.goto(server.url)
            _matched(page, total)
            assert page.locator("#list tbody tr").count() == 50
            assert page.locator("#source option").all_inner_texts()[1:] == sorted({r.source for r in expect.rows})

            # filters narrow the list: incorrect traces of teacher llm-a
            page.select_option("#result", "incorrect")
            page.select_option("#source", "llm-a")
            _matched(page, n_wrong_a)
            rows = page.locator("#list tbody tr")
            assert rows.count() == min(50, n_wrong_a)
            assert set(page.locator("#list tbody tr td:nth-child(3) .badge").all_inner_texts()) == {"incorrect"}
            assert set(page.locator("#list tbody tr td:nth-child(2)").all_inner_texts()) == {"llm-a"}

            # a trace opens: its problem, the trace, and the students' columns beside it
            first = expect.query({"result": "incorrect", "source": "llm-a", "limit": "1"})["items"][0]
            rows.first.click()
            _opened(page, first["id"])
            detail = page.inner_text("#detail-pane")
            assert f"Problem {first['problem_id']}" in detail and first["id"] in detail
            assert "teacher trace (llm-a)" in detail and "student (before)" in detail

            # search finds the planted string, highlighted in the opened trace
            page.click("#reset")
            _matched(page, total)
            page.fill("#q", "purple-armadillo")
            _matched(page, 1)
            _first_row_of(page, expect.rows[301].problem_id)
            page.locator("#list tbody tr").first.click()
            _opened(page, expect.rows[301].id)
            assert NEEDLE in page.inner_text("#detail-pane")
            assert page.inner_text("#detail-pane mark") == "purple-armadillo"

            # a planted <script> is text on the page: not executed, not in the DOM as an element
            page.fill("#q", "<script>")
            _first_row_of(page, expect.rows[5].problem_id)
            _matched(page, 1)
            page.locator("#list tbody tr").first.click()
            _opened(page, expect.rows[5].id)
            page.wait_for_timeout(300)  # give an injected handler the chance to run
            assert page.evaluate("() => window.__pwned") is None
            assert page.evaluate("() => document.scripts.length") == 1  # only /app.js
            assert page.locator("#detail-pane img, #detail-pane script").count() == 0
            assert EVIL in page.inner_text("#detail-pane")
            shown = page.inner_html("#detail-pane")  # escaped; the search term "<script>" is highlighted
            assert "<mark>&lt;script&gt;</mark>window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=" in shown

            # a held-out problem: teacher, student before and student after side by side
            page.click("#reset")
            page.select_option("#kind", "eval")
            page.select_option("#source", "student_after")
            page.select_option("#result", "correct")
            after = expect.query({"kind": "eval", "source": "student_after", "result": "correct"})
            _matched(page, after["matched"])
            page.locator("#list tbody tr").nth(1).click()
            _opened(page, after["items"][1]["id"])
            cols = page.locator("#detail-pane .side .col pre").all_inner_texts()
            assert [c.split(" thinks:")[0] for c in cols] == ["teacher", "student_before", "student_after"]
            page.screenshot(path=str(shot))
            ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"\ntrace browser screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert _hashes(run.root) == before  # the run folder was only read
