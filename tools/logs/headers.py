"""Log line headers (time, level, pid, logger) recognised and stripped generically.

One rule set for every source, no per-format branches: leading tokens are consumed while
they look like header tokens (dates, times, epoch numbers, pids, hosts before a level);
a level word within the first tokens ends the header, together with what customarily
follows it (``[thread]``, ``-``, a ``logger.Name:``). Syslog's ``prog[pid]:`` is a header
too. The first timestamp found is parsed.
"""

from __future__ import annotations

import re
from datetime import datetime

LEVELS = {
    "TRACE": "TRACE", "DEBUG": "DEBUG", "INFO": "INFO", "NOTICE": "INFO", "WARN": "WARN",
    "WARNING": "WARN", "ERROR": "ERROR", "ERR": "ERROR", "SEVERE": "ERROR", "CRITICAL": "FATAL",
    "CRIT": "FATAL", "FATAL": "FATAL", "FAILURE": "ERROR", "ALERT": "FATAL", "EMERG": "FATAL",
    "PANIC": "FATAL",
}  # fmt: skip
#: A level word farther than this many tokens from the start is part of the message.
MAX_HEADER_TOKENS = 10

_TIME_FORMATS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "iso"),
    (re.compile(r"\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d(?:\.\d+)?"), "%Y-%m-%d-%H.%M.%S.%f"),
    (re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d"), "%y/%m/%d %H:%M:%S"),
    (re.compile(r"\d{6} \d{6}"), "%y%m%d %H%M%S"),
    (re.compile(r"[A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d"), "%b %d %H:%M:%S"),
]
_HEADERISH = re.compile(
    r"""^(?:
        -|\d+|                                  # dashes, epoch seconds, pids, counters
        \d{4}[-./]\d\d[-./]\d\d\S*|\d\d/\d\d/\d\d|  # dates
        \d\d:\d\d:\d\d\S*|                      # times
        [A-Z][a-z]{2}|                          # month names
        \[[^\]]*\]|                             # [pid] / [thread]
        \S*\d\S*                                # host-like tokens with digits (node-7, dn228)
    )$""",
    re.VERBOSE,
)
_LOGGER = re.compile(r"^[\w$.@/\-]+:?$")
_SYSLOG_PROG = re.compile(r"^[\w./\-()]+(?:\[\d+\])?:$")


def parse_time(text: str) -> datetime | None:
    """The first timestamp in ``text``, in any of the recognised formats."""
    for pattern, fmt in _TIME_FORMATS:
        match = pattern.search(text)
        if not match:
            continue
        value = match.group(0)
        try:
            if fmt == "iso":
                value = value.replace(",", ".")
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            parsed = datetime.strptime(value, fmt)
            return parsed.replace(year=1900) if fmt.startswith("%b") else parsed
        except ValueError:
            continue
    return None


def _brackets_balanced_split(line: str) -> list[str]:
    """Whitespace tokens, keeping a bracketed group (which may hold spaces) whole."""
    tokens: list[str] = []
    depth = 0
    current = ""
    for char in line:
        if char in "[(":
            depth += 1
        elif char in "])" and depth:
            depth -= 1
        if char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def split_header(line: str) -> tuple[str, datetime | None, str | None]:
    """(message, timestamp, level) of a raw log line; the message is the line itself when
    no header is recognised."""
    tokens = _brackets_balanced_split(line[:2000])
    level: str | None = None
    end = 0
    for i, token in enumerate(tokens[:MAX_HEADER_TOKENS]):
        word = token.strip(":[]").upper()
        if word in LEVELS:
            level, end = LEVELS[word], i + 1
            break
    if level is not None:
        while end < len(tokens) and (tokens[end] == "-" or tokens[end].startswith("[")):
            end += 1
        if end < len(tokens) and tokens[end].endswith(":") and _LOGGER.match(tokens[end]):
            end += 1
        elif (
            end + 1 < len(tokens)
            and "." in tokens[end]
            and _LOGGER.match(tokens[end])
            and tokens[end + 1].startswith("[")
        ):
            end += 2  # `nova.api.server [req-... user project]`: logger and request context
        while end < len(tokens) and tokens[end] == "-":
            end += 1
    else:
        while end < len(tokens) - 1 and _HEADERISH.match(tokens[end]):
            end += 1
        if end < len(tokens) - 1 and _SYSLOG_PROG.match(tokens[end]):
            end += 1
        if end > 0 and not parse_time(" ".join(tokens[:end])) and not tokens[end - 1].endswith(":"):
            end = 0  # nothing header-like enough: keep the line whole
    content = _rest_after(line, tokens, end)
    return content or line, parse_time(" ".join(tokens[: max(end, 1)])), level


def _rest_after(line: str, tokens: list[str], count: int) -> str:
    """The original text after the first ``count`` tokens (spacing kept)."""
    position = 0
    for token in tokens[:count]:
        position = line.find(token, position) + len(token)
    return line[position:].strip()
