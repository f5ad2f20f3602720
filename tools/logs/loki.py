"""Logs from Grafana Loki over its HTTP API (``GET /loki/api/v1/query_range``).

The response format is Loki's documented one: ``data.resultType == "streams"`` and each
stream's ``values`` a list of ``[<unix ns as string>, <line>]``. Lines of all streams are
merged in time order. Loki down, slow, or answering an error gives a ``LogInputError``
with Loki's own message.

The window is the last ``minutes`` before now, or an explicit incident window: ``start``
and/or ``end`` as RFC 3339 timestamps (``2026-11-23T09:30:00Z``, ``...+01:00``) or Unix
seconds (``1795426200``). One bound alone takes ``minutes`` from it; the window may not end
before it starts nor span more than ``MAX_WINDOW``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tools.logs.sources import LogInputError, LogSource

DEFAULT_LIMIT = 5000
#: The longest window one query may read (Loki's own default query limit is 30 days; an RCA
#: compares an incident with its baseline and needs hours, not weeks).
MAX_WINDOW = timedelta(hours=24)
_UNIX_SECONDS = re.compile(r"[+-]?\d+(?:\.\d+)?")

TimeBound = str | int | float | datetime


def parse_time(value: TimeBound, name: str = "time") -> datetime:
    """An RFC 3339 timestamp or Unix seconds as an aware UTC datetime.

    A timestamp without an offset is taken as UTC. Anything else is a ``LogInputError``
    naming ``name`` and the forms that work.
    """
    if isinstance(value, str) and _UNIX_SECONDS.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = _from_unix(float(value), name)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().upper())  # RFC 3339: t/z too
        except ValueError:
            raise LogInputError(
                f"{name} {value!r} is not a time: give an RFC 3339 timestamp "
                "(2026-11-23T09:30:00Z) or Unix seconds (1795426200)"
            ) from None
    else:
        raise LogInputError(f"{name} must be an RFC 3339 timestamp or Unix seconds")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_unix(seconds: float, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise LogInputError(f"{name} {seconds:g} is out of range for Unix seconds") from None


def incident_window(
    *,
    minutes: int = 60,
    start: TimeBound | None = None,
    end: TimeBound | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The (start, end) a query reads: explicit bounds, or ``minutes`` up to now."""
    if minutes < 1:
        raise LogInputError("the window must be at least one minute")
    span = timedelta(minutes=minutes)
    first = parse_time(start, "start") if start is not None else None
    last = parse_time(end, "end") if end is not None else None
    if first is None and last is None:
        last = now or datetime.now(UTC)
    if first is None:
        assert last is not None
        first = last - span
    if last is None:
        last = first + span
    if last <= first:
        raise LogInputError(
            f"the window ends ({_show(last)}) before it starts ({_show(first)}): "
            "end must be after start"
        )
    if last - first > MAX_WINDOW:
        hours = (last - first).total_seconds() / 3600
        raise LogInputError(
            f"the window {_show(first)} to {_show(last)} spans {hours:.1f} h, over the "
            f"{MAX_WINDOW.total_seconds() / 3600:.0f} h one query may read: narrow it to "
            "the incident"
        )
    return first, last


def _show(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def query_range(
    url: str,
    query: str,
    *,
    start: datetime,
    end: datetime,
    limit: int = DEFAULT_LIMIT,
    token: str | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> list[tuple[int, str]]:
    """(timestamp ns, line) pairs of every stream matching ``query``, oldest first."""
    params: dict[str, str | int] = {
        "query": query,
        "start": int(start.timestamp() * 1e9),
        "end": int(end.timestamp() * 1e9),
        "limit": limit,
        "direction": "backward",  # the newest lines when the limit cuts
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(
                f"{url.rstrip('/')}/loki/api/v1/query_range", params=params, headers=headers
            )
    except httpx.TimeoutException:
        raise LogInputError(f"Loki did not answer within {timeout:.0f} s") from None
    except httpx.HTTPError as exc:
        raise LogInputError(f"Loki is unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        detail = response.text.strip()[:300] or response.reason_phrase
        raise LogInputError(f"Loki answered HTTP {response.status_code}: {detail}")
    try:
        body = response.json()
        data = body["data"]
        if body.get("status") != "success" or data.get("resultType") != "streams":
            raise LogInputError(
                f"Loki answered {body.get('status')!r} / {data.get('resultType')!r}"
            )
        entries = [(int(ts), line) for stream in data["result"] for ts, line in stream["values"]]
    except (ValueError, KeyError, TypeError):
        raise LogInputError("Loki's answer is not in the query_range streams format") from None
    entries.sort(key=lambda entry: entry[0])
    return entries


def loki_source(
    url: str,
    query: str,
    *,
    minutes: int = 60,
    start: TimeBound | None = None,
    end: TimeBound | None = None,
    limit: int = DEFAULT_LIMIT,
    token: str | None = None,
    timeout: float = 30.0,
) -> LogSource:
    """``query``'s lines over the window (``incident_window``) as a log source, fetched once."""
    first, last = incident_window(minutes=minutes, start=start, end=end)
    entries = query_range(
        url, query, start=first, end=last, limit=limit, token=token, timeout=timeout
    )
    if not entries:
        window = (
            f"in the last {minutes} minutes"
            if start is None and end is None
            else f"between {_show(first)} and {_show(last)}"
        )
        raise LogInputError(f"Loki has no lines for {query} {window}")
    lines = [line for _, line in entries]
    source = LogSource(name=f"loki {query}", open_lines=lambda: iter(lines))
    if len(entries) >= limit:
        source.notes.append(
            f"Loki returned its limit of {len(entries)} lines; older ones are missing"
        )
    return source
