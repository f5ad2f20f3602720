"""Header stripping: real Loghub lines of eight systems, one rule set, checked against
the structured CSVs (message, timestamp and level), plus other common formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.logs.loghub_data import SYSTEMS, raw_lines, structured
from tools.logs.headers import split_header

#: Share of lines whose message must equal the CSV's Content. Loghub's own parsing is
#: per system; two systems have lines no generic rule reads the same way: Spark's
#: `INFO Remoting: Starting remoting` (Loghub strips the plain-word logger `Remoting:`,
#: BGL keeps `ciod:`) and Thunderbird's `local@host - User ID: ...`.
CONTENT_MATCH = {"Spark": 0.995, "Thunderbird": 0.99}
LEVELS = {"WARNING": "WARN", "SEVERE": "ERROR"}


def _csv_timestamp(system: str, row: dict[str, str]) -> datetime:
    """The line's timestamp as the CSV's columns give it."""
    if system == "HDFS":
        return datetime.strptime(f"{row['Date']} {row['Time']}", "%y%m%d %H%M%S")
    if system == "Spark":
        return datetime.strptime(f"{row['Date']} {row['Time']}", "%y/%m/%d %H:%M:%S")
    if system in ("Hadoop", "Zookeeper", "OpenStack"):
        return datetime.fromisoformat(f"{row['Date']} {row['Time'].replace(',', '.')}")
    if system == "BGL":
        return datetime.strptime(row["Time"], "%Y-%m-%d-%H.%M.%S.%f")
    # HPC's `Time` and Thunderbird's `Timestamp` are epoch seconds
    return datetime.fromtimestamp(int(row.get("Timestamp") or row["Time"]), tz=UTC)


@pytest.mark.parametrize("system", SYSTEMS)
def test_message_timestamp_and_level_match_the_structured_csv(system: str) -> None:
    lines, rows = raw_lines(system), structured(system)
    assert len(lines) == len(rows)
    mismatched = []
    for line, row in zip(lines, rows, strict=True):
        content, timestamp, level = split_header(line)
        if content != row["Content"].strip():
            mismatched.append((line, content))
        assert timestamp == _csv_timestamp(system, row), line
        if "Level" in row:
            assert level == LEVELS.get(row["Level"], row["Level"]), line
        else:
            assert level is None, line
    share = 1 - len(mismatched) / len(lines)
    assert share >= CONTENT_MATCH.get(system, 1.0), mismatched[:3]


@pytest.mark.parametrize(
    ("line", "content", "timestamp", "level"),
    [
        (
            "2024-01-02T03:04:05.123456789Z ERROR [worker-1] app.db.Pool: pool exhausted",
            "pool exhausted",
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
            "ERROR",
        ),
        (
            "2024-01-02 03:04:05+02:00 WARNING disk almost full",
            "disk almost full",
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "WARN",
        ),
        (  # Python logging's default-ish format: the logger name before the level
            "2020-01-01 10:00:00,123 - myapp.db - WARNING - slow query",
            "slow query",
            datetime(2020, 1, 1, 10, 0, 0, 123000),
            "WARN",
        ),
        (  # Spring Boot: pid, ---, [thread], logger, lone colon
            "2020-01-01 10:00:00.123 ERROR 1234 --- [main] c.e.MyService : boom",
            "boom",
            datetime(2020, 1, 1, 10, 0, 0, 123000),
            "ERROR",
        ),
        (  # syslog: no year, host, prog[pid]:
            "Jan  5 10:00:00 myhost sshd[123]: Accepted publickey for bob",
            "Accepted publickey for bob",
            datetime(1900, 1, 5, 10, 0, 0),
            None,
        ),
        (  # glog: level letter glued to the date
            "I0605 12:00:00.123456  1234 main.cc:12] Started server",
            "Started server",
            datetime(1900, 6, 5, 12, 0, 0, 123456),
            "INFO",
        ),
        (  # logcat: one-letter level after the time, pid and tid
            "12-10 09:00:00.123  1234  1234 E ActivityManager: ANR in app",
            "ActivityManager: ANR in app",
            datetime(1900, 12, 10, 9, 0, 0, 123000),
            "ERROR",
        ),
        (  # capnslog (etcd): one-letter level, notice among them, then '|'
            "2024-03-05 06:11:37.502113 N | compactor: Finished auto-compaction",
            "compactor: Finished auto-compaction",
            datetime(2024, 3, 5, 6, 11, 37, 502113),
            "INFO",
        ),
        (  # epoch seconds, then a bracketed level
            "1700000000 [debug] cache warmed",
            "cache warmed",
            datetime.fromtimestamp(1700000000, tz=UTC),
            "DEBUG",
        ),
        (  # bracketed timestamp
            "[2024-01-01 10:00:00,123] ERROR app.web: request failed",
            "request failed",
            datetime(2024, 1, 1, 10, 0, 0, 123000),
            "ERROR",
        ),
        (  # common log format: client, ident, user, [time] before the request
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326',
            '"GET /a.gif HTTP/1.0" 200 2326',
            datetime(2000, 10, 10, 13, 55, 36, tzinfo=timezone(timedelta(hours=-7))),
            None,
        ),
        ("no header here: 42 retries left", "no header here: 42 retries left", None, None),
        (  # a level word deep in the message is not the line's level
            "user bob said the word ERROR twice",
            "user bob said the word ERROR twice",
            None,
            None,
        ),
        ("   ", "", None, None),
    ],
)
def test_common_formats(
    line: str, content: str, timestamp: datetime | None, level: str | None
) -> None:
    assert split_header(line) == (content, timestamp, level)
