"""A question about metrics, in words, to PromQL grounded in what Prometheus has, run and
answered like any query. Works with no model: the metric is found by
``tools.metrics.discovery``, label values named in the question become matchers, and the
metric's type picks the query's shape:

- histogram: ``histogram_quantile(q, sum by (le) (rate(x_bucket[5m])))`` for "p99",
  "median", "95th percentile" (p99 when none is named); the mean for "average";
- counter: ``sum(rate(x[5m]))``; the share of 5xx for "error rate"; ``increase`` over the
  range for "how many";
- gauge: as is, or ``avg``/``sum``/``max``/``min`` when the question asks for one.

"per pod", "by instance", "which nodes" group by that label. When nothing matches well
enough the answer says so and lists the closest metric names; it never guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolContext, ToolResult, register
from tools.metrics.client import Prometheus
from tools.metrics.discovery import (
    STATUS_LABELS,
    Catalog,
    Family,
    Matcher,
    catalog_for,
    choose_matchers,
    names_with,
    rank_families,
    series_names,
    value_matchers,
)
from tools.metrics.durations import format_duration
from tools.metrics.limits import plan_window
from tools.metrics.query import DEFAULT_RANGE, outcome_result, prometheus, run_range

#: Below this blended score (half lexical, half cosine) no metric is close enough.
MIN_SCORE = 0.4
#: Candidates tried, best first, for one whose series carry the labels the question names.
TRY_CANDIDATES = 5
RATE_WINDOW = "5m"
_QUANTILE = re.compile(
    r"\bp(\d{2}(?:\.\d+)?)\b|\b(\d{2}(?:\.\d+)?)(?:st|nd|rd|th)?[ -]?percentile\b|\b(median)\b",
    re.I,
)
_RANGE = re.compile(
    r"\b(?:last|past|over|in|within|during)\s+(?:the\s+)?(?:(\d+)\s*)?"
    r"(seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|[smhdw])\b",
    re.I,
)
_UNIT = {"s": "s", "se": "s", "mi": "m", "m": "m", "h": "h", "ho": "h", "hr": "h", "d": "d"}
_GROUP = re.compile(r"\b(?:per|by|each|every|which|what|top|across)\s+(\w+)", re.I)
GROUP_WORDS = {
    "pod": "pod", "pods": "pod", "instance": "instance", "instances": "instance",
    "host": "instance", "hosts": "instance", "server": "instance", "servers": "instance",
    "machine": "instance", "machines": "instance", "node": "instance", "nodes": "instance",
    "replica": "instance", "replicas": "instance", "namespace": "namespace",
    "namespaces": "namespace", "job": "job", "jobs": "job", "service": "job",
    "services": "job", "code": "code", "codes": "code", "status": "code", "method": "method",
    "methods": "method", "topic": "topic", "topics": "topic", "partition": "partition",
    "partitions": "partition", "container": "container", "containers": "container",
    "mountpoint": "mountpoint", "mountpoints": "mountpoint", "device": "device",
    "devices": "device", "endpoint": "handler", "endpoints": "handler", "route": "handler",
}  # fmt: skip
AGGREGATIONS = {
    "average": "avg", "avg": "avg", "mean": "avg", "total": "sum", "sum": "sum",
    "overall": "sum", "combined": "sum", "max": "max", "maximum": "max", "highest": "max",
    "peak": "max", "min": "min", "minimum": "min", "lowest": "min",
}  # fmt: skip
ERROR_WORDS = {"error", "errors", "failing", "failed", "failures", "failure", "5xx"}
RATIO_WORDS = {"ratio", "percentage", "percent", "share", "fraction", "proportion", "%"}
COUNT_PHRASES = ("how many", "number of", "count of")
PER_SECOND = ("per second", "/s", "rate", "rps", "qps", "throughput")


class MetricsQuestionInput(BaseModel):
    question: str = Field(..., min_length=1, description="The question about metrics, in words.")
    range: str | None = Field(
        None, description="How far back to look (e.g. 1h); default from the question, or 1h."
    )


@dataclass
class Reading:
    """How a question was read: the metric, matchers, grouping and the PromQL written."""

    family: Family
    promql: str
    range: str
    matchers: list[Matcher] = field(default_factory=list)
    group: str | None = None
    unmatched: list[str] = field(default_factory=list)

    def explain(self) -> str:
        parts = [f"metric `{self.family.name}` ({self.family.type})"]
        if self.family.help:
            parts.append(f"help: {self.family.help}")
        if self.matchers:
            parts.append("matchers: " + ", ".join(f"{m} (from “{m.word}”)" for m in self.matchers))
        if self.group:
            parts.append(f"grouped by {self.group}")
        if self.unmatched:
            parts.append(
                "no series of this metric carry " + ", ".join(f"“{w}”" for w in self.unmatched)
            )
        return "; ".join(parts)


def question_range(question: str) -> str | None:
    match = _RANGE.search(question)
    if not match:
        return None
    count = int(match.group(1) or 1)
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
    return number / 100 if number < 100 else number / 1000


def grouping(question: str) -> str | None:
    for match in _GROUP.finditer(question):
        label = GROUP_WORDS.get(match.group(1).lower())
        if label:
            return label
    return None


def selector(name: str, matchers: list[Matcher]) -> str:
    inner = ",".join(str(m) for m in matchers)
    return f"{name}{{{inner}}}" if inner else name


def rate_of(name: str, matchers: list[Matcher]) -> str:
    return f"rate({selector(name, matchers)}[{RATE_WINDOW}])"


def aggregate(op: str, inner: str, group: str | None, *extra: str) -> str:
    labels = [*extra, group] if group else list(extra)
    by = f" by ({', '.join(labels)})" if labels else ""
    return f"{op}{by} ({inner})"


def counter_name(family: Family, names: set[str]) -> str:
    if family.name in names:
        return family.name
    return f"{family.name}_total" if f"{family.name}_total" in names else family.name


def write_promql(
    question: str, family: Family, matchers: list[Matcher], group: str | None, rng: str,
    names: set[str],
) -> str:  # fmt: skip
    words = set(re.findall(r"[a-z0-9%]+", question.lower()))
    low = question.lower()
    agg = next((AGGREGATIONS[w] for w in re.findall(r"[a-z]+", low) if w in AGGREGATIONS), None)
    if family.type == "histogram":
        q = quantile_of(question)
        if q is None and agg == "avg":
            num = aggregate("sum", rate_of(family.name + "_sum", matchers), group)
            den = aggregate("sum", rate_of(family.name + "_count", matchers), group)
            return f"{num} / {den}"
        buckets = rate_of(family.name + "_bucket", matchers)
        return f"histogram_quantile({q or 0.99:g}, {aggregate('sum', buckets, group, 'le')})"
    if family.type == "counter":
        name = counter_name(family, names)
        status = [m for m in matchers if m.label in STATUS_LABELS]
        error_rate = "rate" in words and bool(words & ERROR_WORDS) and "per" not in words
        if status and (words & RATIO_WORDS or error_rate):
            rest = [m for m in matchers if m.label not in STATUS_LABELS]
            num = aggregate("sum", rate_of(name, matchers), group)
            den = aggregate("sum", rate_of(name, rest), group)
            return f"{num} / {den}"
        if any(p in low for p in COUNT_PHRASES) and not any(p in low for p in PER_SECOND):
            return aggregate("sum", f"increase({selector(name, matchers)}[{rng}])", group)
        return aggregate("sum", rate_of(name, matchers), group)
    plain = selector(family.name, matchers)
    if agg:
        return aggregate(agg, plain, group)
    return plain


def reading_for(
    client: Prometheus, catalog: Catalog, question: str, family: Family, rng: str, names: set[str]
) -> Reading:
    """The PromQL for ``question`` if it is about ``family``."""
    options = value_matchers(question, catalog.labels, set(re.split(r"[_:]", family.name)))
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    named_status = any(m.label in STATUS_LABELS for opts in options for m in opts)
    if family.type == "counter" and not named_status and words & ERROR_WORDS:
        options.append([Matcher(lb, "=~", "5..", "errors") for lb in STATUS_LABELS])
    matchers, unmatched = choose_matchers(client, family, options)
    group = grouping(question)
    if group is not None:
        carrying = names_with(client, "{" + f'{group}!=""' + "}")
        if not carrying & (series_names(family) | {f"{family.name}_total"}):
            group = None
    promql = write_promql(question, family, matchers, group, rng, names)
    return Reading(family, promql, rng, matchers, group, unmatched)


def read_question(
    ctx: ToolContext, question: str, rng: str
) -> tuple[Reading | None, list[str], Catalog]:
    """The reading of ``question``, or None with the closest metric names."""
    from knowledge.embedder import get_embedder

    client = prometheus(ctx)
    try:
        embedder = get_embedder(ctx.embedding_model)
        catalog = catalog_for(client, embedder)
        candidates = rank_families(question, catalog, embedder)
        closest = [c.family.name for c in candidates[:5]]
        good = [c for c in candidates[:TRY_CANDIDATES] if c.score >= MIN_SCORE]
        if not good:
            return None, closest, catalog
        names = {n for f in catalog.families for n in (f.name, f"{f.name}_total")}
        names &= set(client.metric_names())
        first: Reading | None = None
        for candidate in good:
            reading = reading_for(client, catalog, question, candidate.family, rng, names)
            if not reading.unmatched:
                return reading, closest, catalog
            first = first or reading
        return first, closest, catalog
    finally:
        client.close()


def answer_question(ctx: ToolContext, question: str, rng: str | None) -> ToolResult:
    rng = rng or question_range(question) or DEFAULT_RANGE
    limits = ctx.prometheus
    reading, closest, _ = read_question(ctx, question, rng)
    if reading is None:
        return ToolResult(
            tool="metrics_question",
            status="no_data",
            message="No metric in Prometheus matches that question well enough; closest "
            f"names: {', '.join(closest) or 'none'}. Ask with one of them, or give PromQL "
            "with `/ops metrics`.",
        )
    window = plan_window(rng, None, max_points=limits.max_points, max_range=limits.max_range)
    client = prometheus(ctx)
    try:
        outcome = run_range(client, reading.promql, window)
    finally:
        client.close()
    how = Evidence(
        kind="note",
        title="How the question was read",
        source=reading.promql,
        text=reading.explain(),
    )
    if not outcome.ranked:
        return ToolResult(
            tool="metrics_question",
            status="no_data",
            message=f"`{reading.promql}` returned no series over the last "
            f"{format_duration(window.seconds)}.",
            evidence=[how],
        )
    result = outcome_result("metrics_question", outcome, ctx)
    result.evidence.append(how)
    return result


@register(
    name="metrics_question",
    description=(
        "Answer a question about metrics in plain words (latency, error rate, memory, CPU, "
        "disk, queue lag, restarts, GPU...): finds the real metric and labels in Prometheus, "
        "writes and runs the PromQL, returns figures, a chart and the PromQL it ran."
    ),
    args_schema=MetricsQuestionInput,
    status_text="querying Prometheus…",
    keywords=(
        "latency",
        "p99",
        "p95",
        "p50",
        "percentile",
        "cpu",
        "memory",
        "disk",
        "5xx",
        "4xx",
        "lag",
        "throughput",
        "utilisation",
        "utilization",
        "restarts",
        "gpu",
        "queue",
        "traffic",
        "rps",
        "qps",
        "saturation",
        "metric",
        "metrics",
        "graph",
        "chart",
        "plot",
        "prometheus",
        "rate",
        "errors",
    ),  # fmt: skip
    query_arg="question",
    rate_group="prometheus",
    requires=("prometheus",),
)
def metrics_question(args: MetricsQuestionInput, ctx: ToolContext) -> ToolResult:
    return answer_question(ctx, args.question, args.range)
