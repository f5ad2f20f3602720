"""The Loki client against a local stand-in serving Loki's documented query_range format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.settings import LokiSettings
from knowledge.embedder import DEFAULT_EMBEDDING_MODEL
from tests.logs.conftest import FakeLoki
from tools.base import ToolContext
from tools.logs.loki import MAX_WINDOW, incident_window, loki_source, parse_time, query_range
from tools.logs.sources import LogInputError
from tools.registry import run_tool

INCIDENT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
INCIDENT_UNIX = 1795426200  # the same instant


def ns(moment: datetime) -> str:
    return str(int(moment.timestamp()) * 10**9)


def test_loki_streams_are_merged_in_time_order(loki: str) -> None:
    end = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    entries = query_range(loki, '{app="checkout"}', start=end.replace(hour=9), end=end)
    assert entries == [(1700000001000000000, "a first"), (1700000002000000000, "b second")]
    assert "query_range" in FakeLoki.seen and FakeLoki.params["direction"] == "backward"
    assert list(loki_source(loki, '{app="checkout"}').lines()) == ["a first", "b second"]


def test_loki_errors_and_outages_are_clear(loki: str) -> None:
    FakeLoki.mode = "error"
    with pytest.raises(LogInputError, match="HTTP 400: parse error"):
        loki_source(loki, "{app=checkout")
    FakeLoki.mode = "empty"
    with pytest.raises(LogInputError, match="no lines .* in the last 60 minutes"):
        loki_source(loki, '{app="x"}')
    with pytest.raises(LogInputError, match="between 2026-11-23T09:30:00Z and 2026-11-23T10:30"):
        loki_source(loki, '{app="x"}', start="2026-11-23T09:30:00Z")
    with pytest.raises(LogInputError, match="unreachable"):
        loki_source("http://127.0.0.1:9", '{app="x"}')


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23T09:30:00Z",
        "2026-11-23t09:30:00z",
        "2026-11-23T10:30:00+01:00",
        "2026-11-23T09:30:00.000Z",
        "2026-11-23T09:30:00",  # no offset: UTC
        str(INCIDENT_UNIX),
        INCIDENT_UNIX,
        float(INCIDENT_UNIX),
    ],
)
def test_times_are_rfc3339_or_unix_seconds(value: str | float) -> None:
    assert parse_time(value) == INCIDENT


@pytest.mark.parametrize("value", ["yesterday", "", "23/11/2026 09:30", "1e999"])
def test_a_bad_time_says_which_forms_work(value: str) -> None:
    with pytest.raises(LogInputError, match="start .* is not a time: give an RFC 3339"):
        parse_time(value, "start")


def test_the_window_is_explicit_or_minutes_from_a_bound() -> None:
    end = INCIDENT + timedelta(hours=2)
    assert incident_window(start=INCIDENT, end=end) == (INCIDENT, end)
    assert incident_window(minutes=30, start=INCIDENT) == (
        INCIDENT,
        INCIDENT + timedelta(minutes=30),
    )
    assert incident_window(minutes=30, end=INCIDENT) == (INCIDENT - timedelta(minutes=30), INCIDENT)
    assert incident_window(minutes=5, now=INCIDENT) == (INCIDENT - timedelta(minutes=5), INCIDENT)
    assert incident_window(start=INCIDENT, end=INCIDENT + MAX_WINDOW)[1] == INCIDENT + MAX_WINDOW


def test_a_window_must_end_after_it_starts_and_stay_within_a_day() -> None:
    with pytest.raises(LogInputError, match="end must be after start"):
        incident_window(start="2026-11-23T10:00:00Z", end="2026-11-23T09:00:00Z")
    with pytest.raises(LogInputError, match="end must be after start"):
        incident_window(start=INCIDENT, end=INCIDENT_UNIX)  # the same instant
    with pytest.raises(LogInputError, match="spans 48.0 h, over the 24 h"):
        incident_window(start=INCIDENT, end=INCIDENT + timedelta(days=2))


def test_loki_reads_the_incident_window_asked_for(loki: str) -> None:
    source = loki_source(loki, '{app="checkout"}', start=INCIDENT_UNIX, end="2026-11-23T10:15:00Z")
    assert list(source.lines()) == ["a first", "b second"]
    assert FakeLoki.params["start"] == ns(INCIDENT)
    assert FakeLoki.params["end"] == ns(INCIDENT + timedelta(minutes=45))


def loki_context(tmp_path: Path, url: str) -> ToolContext:
    return ToolContext(
        index_dir=tmp_path / "none",
        embedding_model=DEFAULT_EMBEDDING_MODEL,
        loki=LokiSettings(url=url),
    )


def test_the_log_rca_tool_takes_start_and_end(tmp_path: Path, loki: str) -> None:
    ctx = loki_context(tmp_path, loki)
    args = {
        "loki_query": '{app="checkout"}',
        "start": "2026-11-23T09:30:00Z",
        "end": INCIDENT_UNIX + 600,
    }
    result = run_tool("log_rca", args, ctx)
    assert result.status in ("ok", "no_data"), result.message
    assert FakeLoki.params["start"] == ns(INCIDENT)
    assert FakeLoki.params["end"] == ns(INCIDENT + timedelta(minutes=10))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T09:00:00Z"}, "end must be after"),
        ({"start": INCIDENT_UNIX, "end": INCIDENT_UNIX + 25 * 3600}, "over the 24 h"),
        ({"start": "half past nine"}, "is not a time"),
    ],
)
def test_the_log_rca_tool_explains_a_bad_window(
    tmp_path: Path, loki: str, args: dict[str, object], message: str
) -> None:
    result = run_tool(
        "log_rca", {"loki_query": '{app="checkout"}', **args}, loki_context(tmp_path, loki)
    )
    assert result.status == "error" and message in result.message
    assert FakeLoki.seen == ""  # Loki was not asked


def test_a_window_without_a_loki_query_is_an_error(tmp_path: Path, loki: str) -> None:
    result = run_tool(
        "log_rca", {"text": "a line", "start": INCIDENT_UNIX}, loki_context(tmp_path, loki)
    )
    assert result.status == "error" and "give loki_query" in result.message


def test_the_tool_schema_has_no_length_bounds() -> None:
    """llama.cpp turns maxLength into a grammar rule repeated that many times."""
    from tools.logs.tool import LogRcaInput

    assert "maxLength" not in str(LogRcaInput.model_json_schema())
