"""Log line headers (time, level, pid, thread, logger) recognised and stripped generically.

One rule set for every source, no per-format branches. The first tokens of a line are
classified: timestamps (ISO-8601, ``yyyy-MM-dd HH:mm:ss,SSS``, ``yy/MM/dd HH:mm:ss``,
``yyMMdd HHmmss``, syslog ``MMM d HH:mm:ss``, common log format, epoch seconds; bare or
in brackets), level
words and "header-like" tokens (numbers, hosts and ids with digits, ``[thread]`` groups,
dotted names, upper-case tags, ``-``). The header ends

- at a level word preceded only by header-like tokens, together with what customarily
  follows a level: ``-`` separators, ``[thread]``/``[request]`` groups and a qualified
  logger name (``org.a.B:``, ``nova.api [req-1]``, ``a.B :``);
- otherwise after the last timestamp: a syslog timestamp is followed by the host and the
  ``prog[pid]:`` tag; epoch seconds by one small flag number;
- or not at all: the line is then its own message.

A plain word followed by ``:`` after the level (``ciod: ...``, ``Error: ...``) is part of
the message, not a logger: only qualified names (with ``.``, ``$`` or ``/``) are loggers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import accumulate

LEVELS = {
    "TRACE": "TRACE", "FINEST": "TRACE", "FINER": "TRACE", "FINE": "DEBUG", "DEBUG": "DEBUG",
    "DBG": "DEBUG", "INFO": "INFO", "NOTICE": "INFO", "WARN": "WARN", "WARNING": "WARN",
    "ERROR": "ERROR", "ERR": "ERROR", "SEVERE": "ERROR", "FAILURE": "ERROR", "CRITICAL": "FATAL",
    "CRIT": "FATAL", "FATAL": "FATAL", "ALERT": "FATAL", "EMERG": "FATAL", "PANIC": "FATAL",
}  # fmt: skip
#: One-letter levels (glog ``I0605``, logcat ``... 123 I Tag:``), only right after a time.
SHORT_LEVELS = {
    "V": "TRACE", "T": "TRACE", "D": "DEBUG", "I": "INFO", "N": "INFO", "W": "WARN", "E": "ERROR",
    "C": "FATAL", "F": "FATAL",
}  # fmt: skip
#: A level word farther than this many tokens from the start is part of the message.
MAX_HEADER_TOKENS = 12
#: A timestamp this close to the start ends a header even after plain words (``id host
#: component state <epoch> message``), when the line starts with a header-like field.
MAX_STAMP_TOKENS = 6

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = frozenset(MONTHS)
_TIMESTAMP = re.compile(
    r"""(?:
      (?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:\ ?(?:Z|[+-]\d\d:?\d\d))?)
    | (?P<dashed>\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d(?:\.\d+)?)
    | (?P<slashed>(?:\d\d)?\d\d/\d\d/\d\d[\ :]\d\d:\d\d:\d\d(?:[.,]\d+)?)
    | (?P<compact>\d{6}\ \d{6})
    | (?P<monthday>\d\d-\d\d\ \d\d:\d\d:\d\d(?:[.,]\d+)?)
    | (?P<clf>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?:\ [+-]\d{4})?)
    | (?P<syslog>[A-Z][a-z]{2}\ {1,2}\d{1,2}\ \d\d:\d\d:\d\d)
    | (?P<epoch>1\d{9})
    )(?![\w:])""",
    re.VERBOSE,
)
#: Tokens that look like header fields: ``-``, anything with a digit (times, pids, hosts,
#: ids), bracket groups, upper-case tags, dotted names, month names.
_HEADERISH = re.compile(
    r"-+|\S*\d\S*|[\[(<].*|[A-Z][A-Z_]+:?|[A-Za-z_][\w$]*(?:[.$][\w$-]+)+:?"
    r"|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec",
    re.DOTALL,
)
_GLOG = re.compile(r"([IWEF])(\d{4} \d\d:\d\d:\d\d\.\d+) +\d+ [^\s\]]+\] ")
_SYSLOG_TAG = re.compile(r"[\w./@()-]+(?:\[\d+\])?:")
_QUALIFIED = re.compile(r"[A-Za-z_][\w$-]*(?:[.$/][\w$-]+)+")
_FLAG = re.compile(r"-?\d{1,2}")  # a small number right after epoch seconds: a flag field
_SEPARATOR = frozenset({"-", "--", "---", "|", ":"})
#: Which stamp a line's timestamp is taken from when it has several: one with a year first.
_PRIORITY = {"iso": 0, "dashed": 0, "slashed": 0, "compact": 0, "clf": 0, "epoch": 1}
_MONTH_NUMBERS = {name: f"{number:02d}" for number, name in enumerate(MONTHS, 1)}


def parse_timestamp(kind: str, text: str) -> datetime | None:
    """A datetime from ``text`` matched as ``kind`` (a group name of ``_TIMESTAMP``).

    Aware when the text carries a zone (or is epoch seconds, read as UTC), naive
    otherwise; syslog, glog and logcat stamps carry no year and get 1900.
    """
    try:
        if kind == "epoch":
            return datetime.fromtimestamp(int(text), tz=UTC)
        if kind == "syslog":
            month, day, clock = text.split()
            return datetime.fromisoformat(f"1900-{_MONTH_NUMBERS[month]}-{int(day):02d}T{clock}")
        return datetime.fromisoformat(_as_iso(kind, text))
    except (ValueError, OverflowError, KeyError):
        return None


def _as_iso(kind: str, text: str) -> str:
    """``text`` of the given kind rewritten as ISO-8601, for ``datetime.fromisoformat``."""
    if kind == "iso":
        return text.replace(" Z", "Z").replace(" +", "+").replace(" -", "-")
    if kind == "dashed":  # 2005-06-03-15.42.50.675872
        return f"{text[:10]}T{text[11:19].replace('.', ':')}{text[19:]}"
    if kind == "compact":  # 081109 203615
        return f"{_century(text[:2])}-{text[2:4]}-{text[4:6]}T{text[7:9]}:{text[9:11]}:{text[11:]}"
    if kind == "monthday":  # 12-10 09:00:00.123 (logcat): no year
        return f"1900-{text[:5]}T{text[6:]}"
    if kind == "slashed":  # 17/06/09 20:10:40 or 2017/06/09 20:10:40
        size = 10 if text[4] == "/" else 8
        date = text[:size].replace("/", "-")
        year = date[:4] if size == 10 else _century(date[:2])
        return f"{year}-{date[-5:]}T{text[size + 1 :]}"
    # clf: 10/Oct/2000:13:55:36 -0700
    zone = text[21:].strip()
    return f"{text[7:11]}-{_MONTH_NUMBERS[text[3:6]]}-{text[:2]}T{text[12:20]}{zone}"


def _century(yy: str) -> str:
    """The year of a two-digit ``yy``, as ``strptime``'s ``%y`` reads it."""
    return f"{19 if int(yy) >= 69 else 20}{yy}"


def _level_of(token: str, after_time: bool) -> str | None:
    """The normalised level ``token`` names: ``INFO``, ``[warn]``, ``<Error>``; a single
    letter (``I``, ``E``) only right after a timestamp."""
    if not (token.isupper() or token[0] in "[<(" or token.istitle()):
        return None
    word = token.strip("[]<>():|")
    upper = word.upper()
    if upper in LEVELS and (word.isupper() or token[:1] in "[<("):
        return LEVELS[upper]
    if after_time and len(token) == 1 and token in SHORT_LEVELS:
        return SHORT_LEVELS[token]
    return None


def split_header(line: str) -> tuple[str, datetime | None, str | None]:
    """(message, timestamp, level) of a raw log line; the message is the whole line when
    no header is recognised."""
    glog = _GLOG.match(line)
    if glog:
        clock = glog.group(2)
        stamp = parse_timestamp("iso", f"1900-{clock[:2]}-{clock[2:4]}T{clock[5:]}")
        return line[glog.end() :].strip(), stamp, SHORT_LEVELS[glog.group(1)]
    tokens, spans = _tokens(line)
    if len(tokens) < 2:
        return line.strip(), None, None
    stamps = _timestamps(tokens)
    end, level = _header_end(tokens, stamps)
    if end == 0 or end >= len(tokens):
        return line.strip(), None, None
    parts = sum(spans[:end])
    content = line.split(None, parts)[parts]
    timestamp = _best_timestamp([stamp for i, stamp in stamps.items() if i < end])
    return content.strip(), timestamp, level


def _tokens(line: str) -> tuple[list[str], list[int]]:
    """The leading whitespace-separated tokens, a ``[...]`` group (which may hold spaces)
    as one, and how many whitespace-separated parts each token spans. The last token is
    the rest of the line."""
    parts = line.split(None, MAX_HEADER_TOKENS + 3)
    if not any(p[0] == "[" and p.count("[") > p.count("]") for p in parts[:MAX_HEADER_TOKENS]):
        return parts, [1] * len(parts)
    tokens: list[str] = []
    spans: list[int] = []
    i = 0
    while i < len(parts):
        token, span = parts[i], 1
        if token[0] == "[" and i < MAX_HEADER_TOKENS:
            while token.count("[") > token.count("]") and i + span < len(parts) - 1:
                token = f"{token} {parts[i + span]}"
                span += 1
        tokens.append(token)
        spans.append(span)
        i += span
    return tokens, spans


def _timestamps(tokens: list[str]) -> dict[int, tuple[str, str]]:
    """Timestamps among the header tokens, bare or in brackets: index of the token each
    ends in -> (kind, text)."""
    head = tokens[:MAX_HEADER_TOKENS]
    text = " ".join(head)
    matches = []
    offset = 0
    for token in head:
        start = offset + 1 if token[0] == "[" else offset
        if text[start : start + 1].isdigit() or text[start : start + 3] in _MONTHS:
            match = _TIMESTAMP.match(text, start)
            if match:
                matches.append(match)
        offset += len(token) + 1
    if not matches:
        return {}
    ends = {end - 1: i for i, end in enumerate(accumulate(len(token) + 1 for token in head))}
    found = {}
    for match in matches:
        end = match.end() + (text[match.end() : match.end() + 1] == "]")
        if end in ends:
            found[ends[end]] = (match.lastgroup or "", match.group(0))
    return found


def _best_timestamp(stamps: list[tuple[str, str]]) -> datetime | None:
    for kind, text in sorted(stamps, key=lambda stamp: _PRIORITY.get(stamp[0], 2)):
        parsed = parse_timestamp(kind, text)
        if parsed is not None:
            return parsed
    return None


def _header_end(tokens: list[str], stamps: dict[int, tuple[str, str]]) -> tuple[int, str | None]:
    """Index of the first message token, and the level, or (0, None) for no header."""
    last_stamp, kind = -1, ""
    headerish = True  # all tokens so far look like header fields
    for i, token in enumerate(tokens[:MAX_HEADER_TOKENS]):
        if headerish:
            level = _level_of(token, last_stamp >= 0)
            if level is not None:
                return _after_level(tokens, i + 1), level
        if i in stamps and (headerish or i < MAX_STAMP_TOKENS):
            last_stamp, kind = i, stamps[i][0]
        elif not _HEADERISH.fullmatch(token):
            if i == 0 or last_stamp >= 0 or i >= MAX_STAMP_TOKENS:
                break
            headerish = False  # plain words among leading fields: only a time may follow
    if last_stamp < 0:
        return 0, None
    end, last = last_stamp + 1, len(tokens) - 1
    if kind == "epoch":
        return end + (end < last and _FLAG.fullmatch(tokens[end]) is not None), None
    # syslog style: `<time> host prog[pid]: message`, or `<time> prog[pid]: message`
    for offset in (0, 1):
        if end + offset < last and _SYSLOG_TAG.fullmatch(tokens[end + offset]):
            return end + offset + 1, None
    while end < last and tokens[end] in _SEPARATOR:
        end += 1
    return end, None


def _after_level(tokens: list[str], end: int) -> int:
    """Skip what follows a level: a pid, ``-``, a ``[thread]``, a qualified logger name
    (with its ``[request context]`` when it has no colon), more separators."""
    last = len(tokens) - 1

    def skip_separators(i: int) -> int:
        while i < last and tokens[i] in _SEPARATOR:
            i += 1
        return i

    if (
        end < last
        and tokens[end].isdigit()
        and (tokens[end + 1] in _SEPARATOR or tokens[end + 1][0] == "[")
    ):
        end += 1  # a pid between the level and a separator or thread
    end = skip_separators(end)
    if end < last and tokens[end][0] == "[":
        end = skip_separators(end + 1)
    if end < last:
        word, follower = tokens[end], tokens[end + 1]
        if word.endswith(":") and _QUALIFIED.fullmatch(word[:-1]):
            end += 1
        elif _QUALIFIED.fullmatch(word) and (follower in _SEPARATOR or follower[0] == "["):
            end += 1
            if end < last and follower[0] == "[":
                end += 1
    return skip_separators(end)
