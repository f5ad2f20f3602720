"""The Prometheus (and Alertmanager) HTTP APIs, through ``prometheus-api-client``.

Every failure becomes a ``ToolError`` whose message a user can act on: Prometheus' own
error text for a bad query, "unreachable" or "did not answer" for a server that is down
or slow. Credentials never appear in messages (URLs are shown without them).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from tools.base import ToolError


class ServerSettings(Protocol):
    """What a connection needs (bot.settings.PrometheusSettings and AlertmanagerSettings)."""

    url: str | None
    token: Any
    username: str | None
    password: Any
    verify_tls: bool
    ca_file: Any
    timeout: float


class PrometheusQueryError(ToolError):
    """Prometheus refused a query (syntax, unknown function, execution limit)."""


def shown_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def session_for(settings: ServerSettings) -> requests.Session:
    """A requests session with the server's credentials and TLS settings."""
    session = requests.Session()
    if settings.token is not None:
        session.headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
    elif settings.username:
        password = settings.password.get_secret_value() if settings.password else ""
        session.auth = (settings.username, password)
    session.verify = str(settings.ca_file) if settings.ca_file else settings.verify_tls
    return session


def timed_out(exc: requests.ConnectionError) -> bool:
    """A read timeout that the retry adapter gave up on arrives as a ConnectionError."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)


@contextmanager
def transport_errors(service: str, where: str, timeout: float) -> Iterator[None]:
    """A server that is slow, down or unreachable becomes a ToolError saying so."""
    slow = f"{service} at {where} did not answer within {timeout:g} s"
    try:
        yield
    except requests.Timeout:
        raise ToolError(slow) from None
    except requests.ConnectionError as exc:
        raise ToolError(
            slow if timed_out(exc) else f"{service} at {where} is unreachable"
        ) from None
    except requests.RequestException as exc:
        raise ToolError(f"{service} at {where}: {type(exc).__name__}") from None


def _error_text(exc: PrometheusApiClientException) -> tuple[int | None, str]:
    """Status and Prometheus' ``error`` field from the client's exception message.

    The client formats ``HTTP Status Code 400 (b'{...}')``; the body is a Python bytes
    literal holding Prometheus' JSON error.
    """
    text = str(exc)
    status: int | None = None
    head, _, body = text.partition(" (")
    if head.startswith("HTTP Status Code "):
        try:
            status = int(head.removeprefix("HTTP Status Code "))
        except ValueError:
            status = None
    try:
        raw = ast.literal_eval(body[:-1]) if body.endswith(")") else b""
        payload = json.loads(raw) if raw else {}
        return status, str(payload.get("error") or raw.decode(errors="replace")).strip()
    except (ValueError, SyntaxError, AttributeError):
        return status, text


@dataclass(frozen=True)
class Sample:
    """One series of a query result: its labels and (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def _samples(result: list[dict[str, Any]]) -> list[Sample]:
    out: list[Sample] = []
    for item in result:
        raw = item.get("values") or ([item["value"]] if "value" in item else [])
        points = [(float(t), float(v)) for t, v in raw]
        out.append(Sample(labels=dict(item.get("metric", {})), points=points))
    return out


class Prometheus:
    """A read-only Prometheus client."""

    def __init__(self, settings: ServerSettings, *, query_timeout: str = "20s") -> None:
        if not settings.url:
            raise ToolError("no Prometheus is configured; set OPSBOT_PROMETHEUS_URL")
        self.url = settings.url
        self.where = shown_url(settings.url)
        self.timeout = settings.timeout
        self.query_timeout = query_timeout
        self.session = session_for(settings)
        # One retry of a dropped connection; no retries of slow or failing answers, so a
        # struggling Prometheus is told so at once instead of being asked three more times.
        retry = Retry(total=1, connect=1, read=0, status=0, backoff_factor=0.2)
        self.api = PrometheusConnect(
            url=self.url,
            session=self.session,
            retry=retry,
            timeout=settings.timeout,
        )

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with transport_errors("Prometheus", self.where, self.timeout):
            try:
                return fn(*args, **kwargs)
            except PrometheusApiClientException as exc:
                status, error = _error_text(exc)
                if status is not None and 400 <= status < 500:
                    raise PrometheusQueryError(f"Prometheus rejected {what}: {error}") from None
                raise ToolError(f"Prometheus at {self.where} failed ({status}): {error}") from None

    def instant(self, query: str, at: datetime | None = None) -> list[Sample]:
        params = {"timeout": self.query_timeout}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        result = self._call("the query", self.api.custom_query, query, params=params)
        return _samples(result)

    def range(self, query: str, start: datetime, end: datetime, step: float) -> list[Sample]:
        result = self._call(
            "the query",
            self.api.custom_query_range,
            query,
            start_time=start,
            end_time=end,
            step=f"{step:g}s",
            params={"timeout": self.query_timeout},
        )
        return _samples(result)

    def metadata(self) -> dict[str, tuple[str, str]]:
        """Metric family → (type, help), for families a target exposes."""
        rows = self._call("the metadata request", self.api.get_metric_metadata, None)
        return {row["metric_name"]: (row["type"], row["help"]) for row in rows}

    def metric_names(self) -> list[str]:
        return list(self._call("the label request", self.api.get_label_values, "__name__"))

    def label_names(self) -> list[str]:
        return list(self._call("the label request", self.api.get_label_names))

    def label_values(self, label: str, params: dict[str, str] | None = None) -> list[str]:
        """Values of ``label``; ``params`` may narrow them (``match[]``, ``start``, ``end``)."""
        return list(self._call("the label request", self.api.get_label_values, label, params))

    def series(self, match: str, start: datetime, end: datetime) -> list[dict[str, str]]:
        """Label sets of the series that ``match`` selects between ``start`` and ``end``."""
        return list(
            self._call(
                "the series request", self.api.get_series, start, end, params={"match[]": match}
            )
        )

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """``data`` of another read endpoint (``/api/v1/alerts``, ``/api/v1/rules``)."""
        response = self._call(
            path, self.session.get, f"{self.url}{path}", params=params, timeout=self.timeout
        )
        if response.status_code != 200:
            raise ToolError(f"Prometheus at {self.where} answered {response.status_code} to {path}")
        return response.json().get("data")

    def alerts(self) -> list[dict[str, Any]]:
        return list((self.get("/api/v1/alerts") or {}).get("alerts", []))

    def alert_rules(self) -> list[dict[str, Any]]:
        groups = (self.get("/api/v1/rules", {"type": "alert"}) or {}).get("groups", [])
        return [rule for group in groups for rule in group.get("rules", [])]

    def close(self) -> None:
        self.session.close()


def alertmanager_alerts(settings: ServerSettings) -> list[dict[str, Any]]:
    """Active, unsilenced alerts from Alertmanager's v2 API."""
    assert settings.url
    where = shown_url(settings.url)
    params = {"active": "true", "silenced": "false", "inhibited": "false"}
    with (
        session_for(settings) as session,
        transport_errors("Alertmanager", where, settings.timeout),
    ):
        response = session.get(
            f"{settings.url}/api/v2/alerts", params=params, timeout=settings.timeout
        )
    if response.status_code != 200:
        raise ToolError(f"Alertmanager at {where} answered {response.status_code}")
    return list(response.json())
