"""What the words of a metrics question ask for, apart from the metric: the range, the
quantile, the grouping, an aggregation, a top N, and how a count or a ratio is meant.
Pure functions over the question's text (no Prometheus, no model)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.metrics.durations import UNITS, format_duration

_QUANTILE = re.compile(
    r"\bp(\d{2}(?:\.\d+)?)\b|\b(\d{2}(?:\.\d+)?)(?:st|nd|rd|th)?[ -]?percentile\b|\b(median)\b",
    re.I,
)
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30,
}  # fmt: skip
_RANGE = re.compile(
    r"\b(?:last|past|over|in|within|during|since)\s+(?:the\s+)?(?:(\d+|"
    + "|".join(_NUMBER_WORDS)
    + r")\s*)?(seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|[smhdw])\b",
    re.I,
)
_UNIT = {"s": "s", "se": "s", "mi": "m", "m": "m", "h": "h", "ho": "h", "hr": "h", "d": "d"}
#: Words skipped after a grouping word ("which of the web services").
_FILLER = {"of", "the", "a", "an", "all", "our", "my"}
#: Words after which a label (or a word for one) names the grouping: "per pod".
GROUP_PREFIXES = {"per", "by", "each", "every", "which", "what", "top"}
GROUP_WORDS = {
    "pod": "pod", "instance": "instance", "host": "instance", "server": "instance",
    "machine": "instance", "node": "instance", "replica": "instance",
    "namespace": "namespace", "job": "job", "service": "job", "code": "code",
    "status": "code", "method": "method", "topic": "topic", "partition": "partition",
    "container": "container", "mountpoint": "mountpoint", "device": "device",
    "endpoint": "handler", "route": "handler",
}  # fmt: skip
AGGREGATIONS = {
    "average": "avg", "averaged": "avg", "avg": "avg", "mean": "avg", "total": "sum", "sum": "sum",
    "overall": "sum", "combined": "sum", "summed": "sum", "max": "max", "maximum": "max",
    "highest": "max", "peak": "max", "min": "min", "minimum": "min", "lowest": "min",
}  # fmt: skip
SUPERLATIVES = {
    "most", "highest", "biggest", "largest", "worst", "heaviest", "busiest", "slowest",
    "furthest", "farthest", "longest", "greatest", "hottest",
}  # fmt: skip
ERROR_WORDS = {"error", "errors", "failing", "failed", "failures", "failure", "5xx"}
RATIO_WORDS = {"ratio", "percentage", "percent", "share", "fraction", "proportion", "%"}
PERCENT_WORDS = {"percentage", "percent", "%", "pct"}
FREE_WORDS = {"free", "available", "left", "remaining", "avail"}
USED_WORDS = {"used", "use", "using", "occupied", "consumed", "taken"}
LATENCY_WORDS = {
    "latency", "duration", "slow", "slowest", "fast", "response", "time", "took", "long",
}  # fmt: skip
_RATE = re.compile(
    r"\bper\s+(?:second|sec|s)\b|/s(?:ec)?\b|\b(?:rate|rps|qps|throughput|traffic)\b", re.I
)
_PER_SECOND = re.compile(r"\bper\s+(?:second|sec|s)\b|/s(?:ec)?\b", re.I)
_COUNT = re.compile(r"\b(?:how many|number of|count of)\b", re.I)
_SO_FAR = re.compile(r"\bhow many times\b|\bso far\b|\bever\b|\bsince (?:start|boot)", re.I)
_LOW = re.compile(r"\b(?:low on|running out|run out|almost full|nearly full)\b", re.I)
_HOW_FULL = re.compile(r"\bhow full\b", re.I)
_TOP_N = re.compile(r"\btop\s+(\d+)\b", re.I)
#: "which 2 partitions are furthest behind": a top N when a superlative follows.
_WHICH_N = re.compile(r"\b(?:which|what)\s+(\d+|two|three|four|five)\b", re.I)
_BOTTOM_N = re.compile(r"\bbottom\s+(\d+)\b", re.I)
LEAST = {"least", "smallest", "fewest", "lowest", "emptiest"}
#: A question about a picture over time: its window is the graph's range, not the
#: window of a rate or an average.
_GRAPH = re.compile(r"\b(?:graph|chart|plot|trend|timeline|over time|sparkline)\w*", re.I)
#: How a gauge moved over the window: "grown", "how much has it changed" (delta).
_CHANGE = re.compile(
    r"\b(?:grow(?:s|ing|n|th)?|grew|increas(?:e[ds]?|ing)|rose|ris(?:e|en|es|ing)"
    r"|climb(?:s|ed|ing)?|chang(?:e[ds]?|ing)|delta|drop(?:s|ped|ping)?|fell"
    r"|fall(?:s|en|ing)(?! behind)|los(?:e|es|ing)|leak(?:s|ing)?|shr(?:ink|inks|inking|unk|ank)"
    r"|decreas(?:e[ds]?|ing)|(?:gone|went|go(?:es|ing)?) (?:up|down))\b",
    re.I,
)
#: How fast a gauge moves: per second ("how fast is lag growing", "growth rate").
_SPEED = re.compile(
    r"\bhow fast\b|\bspeed\b|\bderiv\b|\bgrowth rate\b|\brate of (?:growth|change)\b", re.I
)
#: A speed per minute, hour or day ("MiB per minute", "bytes an hour").
_PER_TIME = re.compile(
    r"(?<!in )\b(?:per|each|an?)\s+(minute|min|hour|hr|day)\b(?!\s+(?:from|ago|later))"
    r"|/(min|h|hr|hour|day)\b",
    re.I,
)
#: An average over time ("averaged over the last 2h"), not across series.
_TIME_AVERAGE = re.compile(r"\baverag(?:e|ed) over\b", re.I)
#: A speed of loss ("how many bytes is it losing per hour"): the negative of the change.
_LOSS = re.compile(
    r"\b(?:los(?:e|es|ing)|shrink(?:s|ing)?|drain(?:s|ing)?|burn(?:s|ing)? through)\b", re.I
)
#: How long until a gauge reaches nothing at its current speed ("hours until it's full").
_UNTIL = re.compile(
    r"\b(?:until|till|before)\b.{0,60}\b(?:full|fills?|runs? out|empty|exhausted)\b"
    r"|\btime (?:to|until) (?:full|fill)",
    re.I,
)
#: A value ahead of now: "an hour from now", "in 4 hours", "at the current rate".
_AHEAD = re.compile(
    r"\b(?:(?:in|within)\s+(?:the\s+next\s+)?(\d+|an?|one|two|three|four|six|twelve)\s*"
    r"(hours?|h|minutes?|mins?|days?)"
    r"|(\d+|an?|one|two|three|four|six|twelve)\s*(hours?|h|minutes?|mins?|days?)\s+from now)\b",
    re.I,
)


#: A latency threshold: "in under 250ms", "slower than 2s".
_THRESHOLD = re.compile(
    r"\b(under|below|less than|faster than|within|above|over|more than|slower than|longer than)"
    r"\s+(\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?)\b",
    re.I,
)
_ABOVE = {"above", "over", "more than", "slower than", "longer than"}


def threshold_of(question: str) -> tuple[float, bool] | None:
    """(seconds, whether above) of a latency threshold the question names: "finish in
    under 250ms" → (0.25, False), "slower than 2s" → (2.0, True)."""
    match = _THRESHOLD.search(question)
    if not match:
        return None
    value = float(match.group(2))
    seconds = value / 1000 if match.group(3).lower().startswith("m") else value
    return seconds, " ".join(match.group(1).lower().split()) in _ABOVE


#: A share as a bound: "less than 10% free", "over 90% used".
_SHARE_BOUND = re.compile(
    r"\b(less than|fewer than|below|under|more than|over|above)\s+(\d+(?:\.\d+)?)\s*(?:%|percent)",
    re.I,
)


def share_bound(question: str) -> tuple[float, bool] | None:
    """(share, whether above) of a bound on a share: "less than 10% free" → (0.1, False)."""
    match = _SHARE_BOUND.search(question)
    if not match:
        return None
    above = match.group(1).lower() in ("more than", "over", "above")
    return float(match.group(2)) / 100, above


#: A comparison with the past: "compared to an hour ago", "vs 30m ago", "than yesterday".
_AGO = re.compile(
    r"\b(?:(\d+|an?|one|two|three|six|twelve|24)\s*(hours?|h|hrs?|minutes?|mins?|m|days?|d|weeks?|w)"
    r"\s+ago|(yesterday)|(last week))\b",
    re.I,
)
_THINGS = re.compile(r"\bhow many (?:" + "|".join(GROUP_WORDS) + r")s\b", re.I)
_SINCE_AGO = re.compile(r"\bsince\b[^?.,;]{0,30}\bago\b", re.I)
_COMPARED = re.compile(
    r"\b(?:compared?|comparison|vs\.?|versus|than|relative|against|times)\b", re.I
)
_TIMES = re.compile(r"\btimes (?:more|less|worse|better|[a-z]{2,}er)\b|\bratio\b|\bx\b", re.I)


def ago_of(question: str) -> tuple[str, bool] | None:
    """(offset, whether a ratio) of a comparison with the past the question asks: "how many
    times higher than an hour ago" → ("1h", True); "vs 30m ago" → ("30m", False), a
    difference."""
    match = _AGO.search(question)
    if not match or re.search(r"\bsince\s+" + re.escape(match.group(0)), question, re.I):
        return None  # "since 10 minutes ago" is a range
    if not _COMPARED.search(question):
        return None  # "did it start with the deploy 20 min ago?" compares nothing
    if match.group(3):
        offset = "1d"
    elif match.group(4):
        offset = "7d"
    else:
        raw = match.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw, 1)
        offset = format_duration(count * unit_seconds(match.group(2)))
    return offset, bool(_TIMES.search(question))


def unit_seconds(word: str) -> int:
    """Seconds in a time unit written as a word of a question ("hours", "min", "w")."""
    return int(UNITS[word.lower()[0]])


def per_time(question: str) -> int | None:
    """Seconds of the time unit a speed is asked in ("MiB per minute": 60)."""
    match = _PER_TIME.search(question)
    if not match:
        return None
    return unit_seconds(match.group(1) or match.group(2))


def question_range(question: str) -> str | None:
    """The range the question looks back over ("in the last 2 hours": 2h); a time ahead
    ("within 4h", "in 2 hours from now") is not one."""
    ahead = _AHEAD.search(question)
    bound = _THRESHOLD.search(question)  # "finish within 4s" is a latency, not a range
    apart = [m for m in (ahead, bound) if m]
    match = next(
        (m for m in _RANGE.finditer(question)
         if all(m.end() <= a.start() or m.start() >= a.end() for a in apart)),
        None,
    )  # fmt: skip
    if not match:
        return None
    raw = (match.group(1) or "1").lower()
    count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
    unit = match.group(2).lower()
    key = unit[:2] if unit[:2] in _UNIT else unit[:1]
    if unit.startswith("w"):
        return f"{count * 7}d"
    return f"{count}{_UNIT.get(key, unit[0])}"


def quantile_of(question: str) -> float | None:
    match = _QUANTILE.search(question)
    if not match:
        return None
    if match.group(3):
        return 0.5
    number = float(match.group(1) or match.group(2))
    return round(number / 100 if number < 100 else number / 1000, 6)


def words(question: str) -> list[str]:
    return re.findall(r"[a-z0-9_%]+", question.lower())


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def grouping(question: str, labels: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The label the question groups by: a word for one within three words after "per",
    "by", "each", "which"... ("for each search instance" → instance), or a label's own name
    right after one ("by model")."""
    found = breakdown(question, labels)
    return found[1] if found else None


def breakdown(
    question: str, labels: set[str] | frozenset[str] = frozenset()
) -> tuple[str, str] | None:
    """(the word that asks for it, the label) of the question's grouping: ("per", "pod")
    asks for a sum per pod; ("which", "pod") or ("each", "instance") for the series."""
    seq = words(question)
    found: list[tuple[str, str]] = []
    for i, word in enumerate(seq):
        if word not in GROUP_PREFIXES:
            continue
        ahead = [w for w in seq[i + 1 : i + 6] if w not in _FILLER][:3]
        right_after = _singular(seq[i + 1]) if i + 1 < len(seq) else ""
        for after in ahead:
            if after in GROUP_PREFIXES:
                break
            one = _singular(after)
            label = GROUP_WORDS.get(one) or (one if one in labels and one == right_after else None)
            if label:
                found.append((word, label))
                break
    # "which pods restarted, how many each? by pod": the sum asked for wins
    return next((f for f in found if f[0] in ("per", "by")), found[0] if found else None)


def aggregation(question: str) -> str | None:
    """avg, sum, max or min as the question asks; "min" after a number is minutes."""
    seq = words(question)
    for i, word in enumerate(seq):
        if word in ("min", "mins") and i and seq[i - 1].isdigit():
            continue
        if (
            word in ("averaged", "average")
            and seq[i + 1 : i + 2] == ["over"]
            and any(w in seq for w in ("by", "per", "each"))
        ):
            continue  # "cpu by service, averaged over the last 2h": over time, not services
        if word in AGGREGATIONS:
            return AGGREGATIONS[word]
    return None


def top_n(question: str) -> int | None:
    """N of "top N"; 1 for "which ... the most/highest"."""
    if match := _TOP_N.search(question):
        return int(match.group(1))
    seq = set(words(question))
    if seq & SUPERLATIVES and seq & {"which", "what", "who"}:
        which = _WHICH_N.search(question)
        raw = which.group(1).lower() if which else "1"
        return int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
    return None


def bottom_n(question: str) -> int | None:
    """N of "bottom N"; 1 for "which ... the least/smallest"."""
    if match := _BOTTOM_N.search(question):
        return int(match.group(1))
    seq = set(words(question))
    if seq & LEAST and seq & {"which", "what", "who"} and not seq & SUPERLATIVES:
        return 1
    return None


def window_of(question: str, found: str | None) -> str | None:
    """The window a gauge's change, speed or average is taken over ("how much has memory
    grown in the last 30 min": 30m), from the question's range ``found``, when it is not
    about a graph (there the window is the graph's range). Under a minute is no window ("in
    seconds" is a unit)."""
    if _GRAPH.search(question):
        return None
    return found if found and not found.endswith("s") else None


def ahead_of(question: str) -> int | None:
    """Seconds ahead of now a question asks about ("an hour from now", "in 4 hours")."""
    match = _AHEAD.search(question)
    if not match:
        return None
    raw = (match.group(1) or match.group(3)).lower()
    unit = (match.group(2) or match.group(4)).lower()
    count = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw, 1)
    return count * unit_seconds(unit)


@dataclass(frozen=True)
class Ask:
    """How a question asks, as flags the query shapes read."""

    quantile: float | None
    aggregation: str | None
    top: int | None
    rate: bool  # per second, traffic, throughput
    error_rate: bool  # "error rate" (a share), not "errors per second"
    count: bool  # how many, number of
    so_far: bool  # how many times, ever, a total with no range: the counter's own value
    ranged: bool  # names a range ("in the last hour")
    which: bool  # "which X is ...": the series that match
    errors: bool
    ratio: bool  # ratio, percent, fraction
    percent: bool
    free: bool  # free, available, left (else used)
    used: bool  # used, in use: of an available/whole pair, the whole less what is free
    low: bool  # low on, running out: below a threshold
    how_full: bool
    latency: bool
    window: str | None = None  # the window of a rate, a change or an average (not a graph's)
    change: bool = False  # how a value moved over the window ("grown", "changed")
    speed: bool = False  # how fast a value moves ("how fast is lag growing")
    ahead: int | None = None  # seconds ahead of now ("an hour from now")
    bottom: int | None = None  # N of "bottom N", 1 for "which ... the least"
    summed: bool = False  # a sum per label value is asked ("by pod", "per node")
    across: bool = False  # one figure across the series ("across both gateways")
    bound: tuple[float, bool] | None = None  # a bound on a share: "less than 10% free"
    per_time: int | None = None  # seconds of the speed's unit: "per minute" 60
    loss: bool = False  # a speed of loss: the change's negative
    until: bool = False  # how long until it runs out at the current speed
    since: bool = False  # a change since a time ago ("since 30 min ago"): now against then
    things: bool = False  # how many of the things that have it ("how many pods restarted")
    until_unit: int | None = None  # seconds of the unit that time is asked in ("hours")
    time_average: bool = False  # "averaged over the last 2h": the window is the rate's
    threshold: float | None = None  # seconds of "in under 250ms", "slower than 2s"
    above: bool = False  # the share above the threshold, not under it


def ask_of(question: str) -> Ask:
    seq = set(words(question))
    threshold = threshold_of(question)
    rng = question_range(question)
    return Ask(
        quantile=quantile_of(question),
        aggregation=aggregation(question),
        top=top_n(question),
        rate=bool(_RATE.search(question)),
        # "error rate" is a share; "5xx rate" (a status class) is per second
        error_rate="rate" in seq
        and bool(seq & (ERROR_WORDS - {"5xx"}))
        and not _PER_SECOND.search(question),
        count=bool(_COUNT.search(question)),
        so_far=bool(_SO_FAR.search(question)) or (bool(seq & {"total", "totals"}) and rng is None),
        ranged=rng is not None,
        which=bool(seq & {"which", "who"}),
        errors=bool(seq & ERROR_WORDS),
        ratio=bool(seq & RATIO_WORDS) or "%" in question,
        percent=bool(seq & PERCENT_WORDS) or "%" in question,
        free=bool(seq & FREE_WORDS) or any("avail" in w for w in seq),
        used=bool(seq & USED_WORDS),
        low=bool(_LOW.search(question)),
        how_full=bool(_HOW_FULL.search(question)),
        latency=bool(seq & LATENCY_WORDS)
        or quantile_of(question) is not None
        or threshold is not None,
        window=window_of(question, rng),
        change=bool(_CHANGE.search(question)),
        speed=bool(_SPEED.search(question)),
        ahead=ahead_of(question),
        bottom=bottom_n(question),
        summed=(breakdown(question) or ("", ""))[0] in ("per", "by"),
        across=bool(seq & {"across", "both", "anywhere", "together"}),
        bound=share_bound(question),
        per_time=per_time(question),
        loss=bool(_LOSS.search(question)),
        until=bool(_UNTIL.search(question)),
        since=bool(_SINCE_AGO.search(question)),
        things=bool(_THINGS.search(question)),
        time_average=bool(_TIME_AVERAGE.search(question)),
        until_unit=next(
            (unit_seconds(w) for w in ("day", "hour", "minute") if w in question.lower()), None
        ),
        threshold=threshold[0] if threshold else None,
        above=bool(threshold and threshold[1]),
    )
