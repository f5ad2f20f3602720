"""A local stand-in for Grafana Loki's query_range API (Loki is not packaged here).

It answers in Loki's documented streams format, or with Loki's kind of error, and records
the query parameters of the last request so tests can check the window asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.local_http import serving


class FakeLoki(BaseHTTPRequestHandler):
    """Answers like Loki's query_range (documented streams format), or with an error."""

    mode = "ok"  # "ok", "error" or "empty"
    seen = ""  # the path of the last request
    params: dict[str, str] = {}  # its query parameters

    def do_GET(self) -> None:  # noqa: N802
        FakeLoki.seen = self.path
        FakeLoki.params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if self.mode == "error":
            body, status = b"parse error at line 1, col 7: syntax error: unexpected IDENTIFIER", 400
        else:
            streams = [
                {"stream": {"app": "checkout"}, "values": [["1700000002000000000", "b second"]]},
                {
                    "stream": {"app": "checkout", "pod": "x"},
                    "values": [["1700000001000000000", "a first"]],
                },
            ]
            payload = {
                "status": "success",
                "data": {
                    "resultType": "streams",
                    "result": streams if self.mode == "ok" else [],
                    "stats": {},
                },
            }
            body, status = json.dumps(payload).encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loki() -> Iterator[str]:
    FakeLoki.mode, FakeLoki.seen, FakeLoki.params = "ok", "", {}
    with serving(FakeLoki) as url:
        yield url
