"""``reasondistill view RUN_DIR``: a local web page to browse a run's problems and traces.

A stdlib ``ThreadingHTTPServer`` bound to 127.0.0.1 serves the page (``static/``: HTML, CSS
and JS, no external resource) and a JSON API over the in-memory :class:`~.index.Index`:

- ``GET /api/meta``: the filters' values and counts;
- ``GET /api/rows?offset=&limit=&kind=&result=&hinted=&source=&fate=&dmin=&dmax=&lmin=&lmax=&q=&sort=``:
  one page of matching rows (server-side filtering and paging, see :meth:`Index.query`);
- ``GET /api/row?id=ID``: one row opened, with its problem and the side-by-side answers.

The page renders every piece of run text with ``textContent`` (never as HTML), and a strict
Content-Security-Policy allows only the page's own script, so a trace holding ``<script>`` is
shown, not run. Requests whose ``Host`` is not this loopback address are refused (DNS rebinding).
The run folder is only read; when its files change the index is rebuilt on the next request.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError, InputError
from .index import Index

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"), "/app.css": ("app.css", "text/css; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _static(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, run_dir: Path, port: int) -> None:
        self.run_dir = Path(run_dir)
        self.index = Index.build(self.run_dir)
        self.lock = threading.Lock()
        super().__init__((HOST, port), Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def current(self) -> Index:
        """The index, rebuilt first when a file it read has changed since."""
        with self.lock:
            if self.index.stale():
                log.info("view: %s changed, re-indexing", self.run_dir)
                self.index = Index.build(self.run_dir)
            return self.index


class Handler(BaseHTTPRequestHandler):
    server: ViewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("view: " + format, *args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")

    def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's name)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if url.path in STATIC:
                name, ctype = STATIC[url.path]
                self._send(HTTPStatus.OK, _static(name), ctype)
            elif url.path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif url.path == "/api/meta":
                self._json(self.server.current().facets())
            elif url.path == "/api/rows":
                self._json(self.server.current().query(params))
            elif url.path == "/api/row":
                detail = self.server.current().detail(params.get("id", ""))
                if detail is None:
                    self._error(HTTPStatus.NOT_FOUND, f"no row {params.get('id', '')!r}")
                else:
                    self._json(detail)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
        except ValueError as e:  # a bad filter value (InputError is one too: a file changed under us)
            status = HTTPStatus.CONFLICT if isinstance(e, InputError) else HTTPStatus.BAD_REQUEST
            self._error(status, str(e))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only")


def make_server(run_dir: str | Path, port: int = 0) -> ViewServer:
    """Index ``run_dir`` and bind to 127.0.0.1:``port`` (0: any free port); call ``serve_forever``.
    A port that cannot be bound is a :class:`ConfigError` naming the address and what to do."""
    try:
        return ViewServer(Path(run_dir), port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: {HOST}:{port} is already in use (another view, or another "
                              f"program); choose another --port, or --port 0 for any free one") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(f"--port {port}: not allowed to listen on {HOST}:{port} ({e.strerror}); "
                              "choose a port above 1023, or --port 0 for any free one") from None
        raise


def serve(run_dir: str | Path, port: int = 0) -> None:
    """Serve until Ctrl-C."""
    server = make_server(run_dir, port)
    idx = server.index
    print(f"reasondistill view: {len(idx.rows)} traces and answers over {len(idx.problems)} problems of "
          f"{server.run_dir} (indexed in {idx.build_seconds:.1f} s)")
    for note in idx.notes:
        print(f"  note: {note}")
    print(f"open {server.url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
