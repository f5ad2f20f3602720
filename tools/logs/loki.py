"""Logs from Grafana Loki over its HTTP API (``GET /loki/api/v1/query_range``).

The response format is Loki's documented one: ``data.resultType == "streams"`` and each
stream's ``values`` a list of ``[<unix ns as string>, <line>]``. Lines of all streams are
merged in time order. Loki down, slow, or answering an error gives a ``LogInputError``
with Loki's own message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tools.logs.sources import LogInputError, LogSource

DEFAULT_LIMIT = 5000


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
    end: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    token: str | None = None,
    timeout: float = 30.0,
) -> LogSource:
    """The last ``minutes`` of ``query`` as a log source (fetched once)."""
    end = end or datetime.now(UTC)
    entries = query_range(
        url,
        query,
        start=end - timedelta(minutes=minutes),
        end=end,
        limit=limit,
        token=token,
        timeout=timeout,
    )
    if not entries:
        raise LogInputError(f"Loki has no lines for {query} in the last {minutes} minutes")
    lines = [line for _, line in entries]
    source = LogSource(name=f"loki {query}", open_lines=lambda: iter(lines))
    if len(entries) >= limit:
        source.notes.append(
            f"Loki returned its limit of {len(entries)} lines; older ones are missing"
        )
    return source
