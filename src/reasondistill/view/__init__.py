"""``reasondistill view RUN_DIR``: browse a run's problems, teacher traces and evaluated answers
in a local web page (127.0.0.1 only), filtered and paged by the server over an in-memory index.

It reads the run folder and never writes to it. Like every stage package it imports only the
shared modules (layout, io, records, metrics, errors), never another stage.
"""

from __future__ import annotations

from .index import Index, Row
from .server import HOST, ViewServer, make_server, serve

__all__ = ["HOST", "Index", "Row", "ViewServer", "make_server", "serve"]
