"""The shape of the PromQL for a metric, picked by its type and by how the question asks
(``tools.metrics.question_words.Ask``):

- histogram: ``histogram_quantile(q, sum by (le) (rate(x_bucket[5m])))`` for "p99",
  "median", "95th percentile" (p99 when none is named); the mean for "average"; requests
  per second (``rate`` of ``x_count``) when a rate is asked with no word of latency;
- counter: ``sum(rate(x[5m]))`` when a rate is asked; the share of 5xx for "error rate";
  ``sum(increase(x[range]))`` for "how many ... in the last hour", the counter itself for
  "how many times"; a counter of seconds (CPU) as the rate of each series, like a gauge;
  rare events (restarts) as the count of each series over the range (``> 0`` for
  "which ..."), others as ``sum(rate(...))``;
- gauge: as is, or ``avg``/``sum``/``max``/``min`` when the question asks for one;
  "percent free/used", "how full", "low on" over an available/size pair
  (``*_avail*``/``*_size*``, ``*Available*``/``*Total*``) found by name;
- "top N", "which ... the most": ``topk``.
"""

from __future__ import annotations

import re

from tools.metrics.discovery import Family, series_names
from tools.metrics.durations import parse_duration
from tools.metrics.question_values import STATUS_LABELS, Matcher
from tools.metrics.question_words import Ask, ago_of, ask_of
from tools.metrics.units import in_unit, operand

RATE_WINDOW = "5m"
#: The window of "which pod is crash looping" (now, with no range named).
RECENT_WINDOW = "15m"
#: "low on disk": available below this share of the size.
LOW_SHARE = 0.1
#: Name parts of an available amount and of the whole it is part of.
PAIR_PARTS = (
    ("avail", "size"), ("Available", "Total"), ("available", "total"), ("Free", "Total"),
    ("free", "size"), ("free", "total"),
)  # fmt: skip


def selector(name: str, matchers: list[Matcher]) -> str:
    inner = ",".join(str(m) for m in matchers)
    return f"{name}{{{inner}}}" if inner else name


def rate_of(name: str, matchers: list[Matcher], window: str | None = None) -> str:
    return f"rate({selector(name, matchers)}[{window or RATE_WINDOW}])"


def short_window(ask: Ask) -> str | None:
    """The window a counter's rate is taken over: the one the question names when it is
    short ("5xx per sec over the last 10 minutes": [10m]) or one an average is taken over
    ("avg latency over the last 30 min"); else a longer one ("over the last hour") is the
    range of the answer's graph, each point a RATE_WINDOW rate."""
    if ask.window and parse_duration(ask.window) <= parse_duration(RECENT_WINDOW):
        return ask.window
    # an average or a share over the window is one figure for all of it
    averaged = ask.aggregation == "avg" or ask.time_average
    return ask.window if averaged or ask.percent or ask.ratio else None


def aggregate(op: str, inner: str, group: str | None, *extra: str) -> str:
    labels = [*extra, group] if group else list(extra)
    by = f" by ({', '.join(labels)})" if labels else ""
    return f"{op}{by} ({inner})"


def counter_name(family: Family, names: set[str]) -> str:
    if family.name in names:
        return family.name
    return f"{family.name}_total" if f"{family.name}_total" in names else family.name


def ratio_pair(name: str, names: set[str]) -> tuple[str, str] | None:
    """(available, whole) for a metric that is either of them, when both exist."""
    for part, whole in PAIR_PARTS:
        if part in name and name.replace(part, whole) in names:
            return name, name.replace(part, whole)
        if whole in name and name.replace(whole, part) in names:
            return name.replace(whole, part), name
    return None


def histogram_shape(
    ask: Ask, name: str, matchers: list[Matcher], group: str | None, le: str | None = None
) -> str:
    window = short_window(ask)
    if ask.threshold is not None and le is not None:
        at_le = [*matchers, Matcher("le", "=", le, "")]
        if ask.count and ask.window:  # how many took longer (or not)
            bucket, events = selector(name + "_bucket", at_le), selector(name + "_count", matchers)
            under = aggregate("sum", f"increase({bucket}[{ask.window}])", group)
            total = aggregate("sum", f"increase({events}[{ask.window}])", group)
            return f"{total} - {under}" if ask.above else under
        under = aggregate("sum", rate_of(name + "_bucket", at_le, window), group)  # the share
        share = f"{under} / {aggregate('sum', rate_of(name + '_count', matchers, window), group)}"
        share = f"1 - ({share})" if ask.above else share
        return f"100 * ({share})" if ask.percent else share
    if ask.quantile is None and ask.aggregation == "avg":
        num = aggregate("sum", rate_of(name + "_sum", matchers, window), group)
        den = aggregate("sum", rate_of(name + "_count", matchers, window), group)
        return f"{num} / {den}"
    if ask.quantile is None and (ask.rate or ask.count) and not ask.latency:
        return aggregate("sum", rate_of(name + "_count", matchers, window), group)
    buckets = rate_of(name + "_bucket", matchers, window)
    return f"histogram_quantile({ask.quantile or 0.99:g}, {aggregate('sum', buckets, group, 'le')})"


def counter_shape(
    ask: Ask, name: str, matchers: list[Matcher], group: str | None, rng: str, rare: bool
) -> str:
    window = short_window(ask)
    status = [m for m in matchers if m.label in STATUS_LABELS]
    if status and (ask.ratio or (ask.error_rate and group is None)):
        rest = [m for m in matchers if m.label not in STATUS_LABELS]
        num = aggregate("sum", rate_of(name, matchers, window), group)
        den = aggregate("sum", rate_of(name, rest, window), group)
        return f"100 * {num} / {den}" if ask.percent else f"{num} / {den}"
    if name.endswith(("_seconds_total", "_seconds")) and not ask.count:
        return per_series(ask, rate_of(name, matchers, window), group)
    if ask.rate or ask.per_time:
        rated = aggregate(ask.aggregation or "sum", rate_of(name, matchers, window), group)
        return f"{ask.per_time} * {rated}" if ask.per_time else rated  # "5xx per minute"
    if ask.count:
        if ask.ranged:
            increase = f"increase({selector(name, matchers)}[{rng}])"
            if ask.which and not ask.top:  # "which pods restarted, how many times": those
                return f"{per_series(ask, increase, group)} > 0"
            if ask.things:  # "how many pods restarted": the series that did, counted
                return f"count({increase} > 0)"
            return aggregate("sum", increase, group)
        if ask.so_far:
            return aggregate("sum", selector(name, matchers), group)
        return aggregate("sum", rate_of(name, matchers, window), group)
    if ask.so_far:
        return aggregate("sum", selector(name, matchers), group)
    if not rare:
        return aggregate(ask.aggregation or "sum", rate_of(name, matchers, window), group)
    span = rng if ask.ranged or not ask.which else RECENT_WINDOW
    events = per_series(ask, f"increase({selector(name, matchers)}[{span}])", group)
    return f"{events} > 0" if ask.which and not ask.top else events


def counts_events(question: str, family: Family, name: str) -> bool:
    """Whether the shape of ``question`` about this counter hangs on its events being rare."""
    ask = ask_of(question)
    seconds = name.endswith(("_seconds_total", "_seconds")) and not ask.count
    status_share = ask.ratio or ask.error_rate
    return family.type == "counter" and not (ask.rate or ask.count or seconds or status_share)


def per_series(ask: Ask, inner: str, group: str | None) -> str:
    """Each series as is ("which pods ..."), or aggregated when the question asks for an
    aggregation or a breakdown ("per partition", "by instance", a top N)."""
    if ask.aggregation or (group and (ask.top or not ask.which or ask.summed)):
        return aggregate(ask.aggregation or "sum", inner, group)
    return aggregate("sum", inner, None) if ask.across and not group else inner


def ratio_shape(ask: Ask, pair: tuple[str, str], matchers: list[Matcher]) -> str | None:
    avail, whole = (selector(n, matchers) for n in pair)
    share = f"{avail} / {whole}"
    if ask.bound is not None:  # "less than 10% free", "more than 90% used"
        limit, above = ask.bound
        of = share if ask.free and not ask.used else f"1 - {share}"
        return f"{of} {'>' if above else '<'} {limit:g}"
    if ask.low and not (ask.top or ask.bottom):  # "the one with the lowest share" ranks
        return f"{share} < {LOW_SHARE:g}"
    if ask.used and not (ask.percent or ask.ratio or ask.how_full):  # an amount in use
        return f"{whole} - {avail}"
    if not (ask.percent or ask.ratio or ask.how_full):
        return None
    used = not ask.free or ask.how_full
    if ask.percent:
        return f"100 * (1 - {share})" if used else f"100 * {share}"
    return f"1 - {share}" if used else share


def gauge_shape(
    ask: Ask, family: Family, matchers: list[Matcher], group: str | None, names: set[str]
) -> str:
    plain = selector(family.name, matchers)
    if ask.ahead and ask.low:  # "predicted to run out within 4h": below nothing by then
        return f"predict_linear({plain}[{ask.window or '1h'}], {ask.ahead}) < 0"
    pair = ratio_pair(family.name, names)
    if pair and (shaped := ratio_shape(ask, pair, matchers)):
        return shaped
    if ask.ahead and not ask.speed:  # where it will be: extrapolate the last window
        return per_series(ask, f"predict_linear({plain}[{ask.window or '1h'}], {ask.ahead})",
                          group)  # fmt: skip
    if ask.until:  # "hours until it's full": what is left over the speed it goes at
        left = f"{plain} / -deriv({plain}[{ask.window or '1h'}])"
        return f"{left} / {ask.until_unit}" if ask.until_unit else left
    if ask.speed or ((ask.rate or ask.per_time) and ask.change):  # e.g. lag growth per second
        moved = f"deriv({plain}[{ask.window or RATE_WINDOW}])"
        if ask.per_time or ask.loss:
            moved = f"{'-' if ask.loss else ''}{ask.per_time or 1} * {moved}"
        if ask.aggregation or group or not matchers:  # all series together unless one is named
            return aggregate(ask.aggregation or "sum", moved, group)
        return moved
    if ask.change and ask.window and ask.since:  # "grown since 30 min ago": now against then
        now = per_series(ask, plain, group)
        return f"{now} - {with_offset(now, ask.window, family)}"
    if ask.change and ask.window:  # how much it moved over the window
        return per_series(ask, f"delta({plain}[{ask.window}])", group)
    if ask.aggregation in ("avg", "max", "min") and ask.window:  # "peak ... in the past hour"
        over = f"{ask.aggregation}_over_time({plain}[{ask.window}])"
        if group or ask.across:  # and then per instance, or across them all
            return aggregate(ask.aggregation, over, group)
        return over
    if ask.count and not ask.aggregation:
        return aggregate("sum", plain, group)
    return per_series(ask, plain, group)


def with_offset(promql: str, offset: str, family: Family) -> str:
    """``promql`` as it was ``offset`` ago: each range selector (or, with none, each selector
    of the family's series) shifted back."""
    if "[" in promql:
        return re.sub(r"\[([^\]]+)\]", rf"[\1] offset {offset}", promql)
    names = "|".join(sorted((re.escape(n) for n in series_names(family)), key=len, reverse=True))
    return re.sub(rf"\b({names})(\{{[^}}]*\}})?", rf"\1\2 offset {offset}", promql)


def unit_of(family: Family, promql: str) -> str | None:
    """The unit of the values of ``promql`` about ``family``: a histogram of seconds'
    quantile or mean is in seconds; a gauge of bytes, not made a share, in bytes."""
    if family.type == "histogram" and family.name.endswith("_seconds"):
        quantile = promql.startswith("histogram_quantile(")
        mean = "_sum[" in promql or "_sum{" in promql
        return "seconds" if quantile or mean else None
    if family.type == "gauge" and family.name.endswith("_bytes"):
        share = " / " in promql or " < " in promql
        return None if share else "bytes"
    return None


def write_promql(
    question: str, family: Family, matchers: list[Matcher], group: str | None, rng: str,
    names: set[str], *, rare: bool = False, le: str | None = None,
) -> str:  # fmt: skip
    """The PromQL for ``question`` about ``family`` (``names``: the metric names there are;
    ``rare``: the counter's events are few, so they are counted rather than rated; ``le``:
    the histogram's bucket at the latency threshold the question names)."""
    ask = ask_of(question)
    if family.type == "histogram":
        promql = histogram_shape(ask, family.name, matchers, group, le)
    elif family.type == "counter":
        promql = counter_shape(ask, counter_name(family, names), matchers, group, rng, rare)
    else:
        promql = gauge_shape(ask, family, matchers, group, names)
    if ago := ago_of(question):  # "how many times higher than an hour ago"
        offset, times = ago
        past = with_offset(promql, offset, family)
        if ask.percent:  # "% increase now vs 1h ago"
            promql = f"100 * (({promql}) / ({past}) - 1)"
        else:
            promql = f"({promql}) / ({past})" if times else f"({promql}) - ({past})"
    promql = in_unit(promql, unit_of(family, promql), question)
    seconds = family.name.endswith(("_seconds", "_seconds_total"))
    busy = family.type == "counter" and seconds and "rate(" in promql
    if ask.percent and (family.name.endswith("_ratio") or busy and " / " not in promql):
        promql = f"100 * {operand(promql)}"  # a ratio "as a %"; CPU seconds a second: of a core
    if ask.top and not promql.endswith("> 0") and " < " not in promql:
        return f"topk({ask.top}, {promql})"
    if ask.bottom and not ask.top and not promql.endswith("> 0") and " < " not in promql:
        return f"bottomk({ask.bottom}, {promql})"
    return promql


def grouped_parts(promql: str, group: str | None) -> list[tuple[int, int, str]]:
    """(start, end, inner) of each ``sum by (group) (inner)`` of ``promql`` (or avg, max,
    min; ``sum (inner)`` with no group), when there is one, or two that are the same query
    now and at an offset; else none (a ratio of two aggregations, a quantile's buckets)."""
    ops = ("sum", "avg", "max", "min") if group else ("sum",)
    heads = [f"{op} by ({group}) (" if group else f"{op} (" for op in ops]
    found: list[tuple[int, int, str]] = []
    for head in heads:
        at = promql.find(head)
        while at >= 0:
            depth, i = 1, at + len(head)
            while i < len(promql) and depth:
                depth += {"(": 1, ")": -1}.get(promql[i], 0)
                i += 1
            if depth or "histogram_quantile(" in promql[:at]:
                return []
            found.append((at, i, promql[at + len(head) : i - 1]))
            at = promql.find(head, i)
    found.sort()
    if len(found) == 2 and found[1][2] != found[0][2] and " offset " in found[1][2]:
        return found if re.sub(r" offset \w+", "", found[1][2]) == found[0][2] else []
    return found if len(found) == 1 else []
