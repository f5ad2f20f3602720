"""The Prometheus client against a server that is slow, failing or picky: each case is a
clear message; the query timeout is sent with every query."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from tests.local_http import serving
from tools.base import ToolError
from tools.metrics.client import Prometheus, PrometheusQueryError


class Picky(BaseHTTPRequestHandler):
    mode = "ok"
    seen: dict[str, str] = {}
    headers_seen: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802
        Picky.seen = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        Picky.headers_seen = {k.lower(): v for k, v in self.headers.items()}
        if self.mode == "slow":
            time.sleep(1.5)
        status, payload = {
            "ok": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
            "slow": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
            "limit": (422, {"status": "error", "errorType": "execution",
                            "error": "query processing would load too many samples"}),
            "down": (503, {"status": "error", "errorType": "unavailable", "error": "overloaded"}),
        }[self.mode]  # fmt: skip
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Picky.mode = "ok"
    with serving(Picky) as url:
        yield url


def client(url: str, **auth: object) -> Prometheus:
    settings = SimpleNamespace(
        url=url, token=None, username=None, password=None, verify_tls=True, ca_file=None,
        timeout=0.5,
    )  # fmt: skip
    for name, value in auth.items():
        setattr(settings, name, value)
    return Prometheus(settings, query_timeout="7s")


def test_every_query_carries_the_evaluation_timeout_and_the_credentials(server: str) -> None:
    client(server, token=SecretStr("t0ken")).instant("up")
    assert Picky.seen["timeout"] == "7s" and Picky.seen["query"] == "up"
    assert Picky.headers_seen["authorization"] == "Bearer t0ken"
    end = datetime.now(UTC)
    client(server, username="bob", password=SecretStr("pw")).range(
        "up", end - timedelta(hours=1), end, 15
    )
    assert Picky.seen["step"] == "15s" and Picky.seen["timeout"] == "7s"
    assert Picky.headers_seen["authorization"].startswith("Basic ")


def test_a_slow_prometheus_is_said_to_be_slow(server: str) -> None:
    Picky.mode = "slow"
    with pytest.raises(ToolError, match="did not answer within 0.5 s"):
        client(server).instant("up")


def test_a_refused_query_shows_prometheus_reason(server: str) -> None:
    Picky.mode = "limit"
    with pytest.raises(PrometheusQueryError, match="too many samples"):
        client(server).instant("sum(rate(x[30d]))")


def test_a_failing_prometheus_shows_its_status_without_credentials(server: str) -> None:
    Picky.mode = "down"
    secret_url = server.replace("http://", "http://bob:s3cret@")
    with pytest.raises(ToolError) as caught:
        client(secret_url).instant("up")
    assert "(503): overloaded" in str(caught.value) and "s3cret" not in str(caught.value)
