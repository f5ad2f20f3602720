"""Run a PromQL query over a time range: figures per series and a chart.

The PromQL that ran is always in the answer, so the user can check or reuse it.
"""

from __future__ import annotations

import difflib
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from tools import intents
from tools.base import Evidence, ToolContext, ToolError, ToolResult, register
from tools.metrics.chart import COLOURS, render_chart
from tools.metrics.client import Prometheus, PrometheusQueryError, Sample
from tools.metrics.durations import format_duration
from tools.metrics.limits import Window, plan_window
from tools.metrics.summary import SeriesStats, fmt, series_name, stats, varying_labels

DEFAULT_RANGE = "1h"
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan", "atan2",
}  # fmt: skip


class PrometheusQueryInput(BaseModel):
    promql: str = Field(..., min_length=1, description="The PromQL expression to run.")
    range: str = Field(
        DEFAULT_RANGE, description="How far back to look, a Prometheus duration (e.g. 1h, 30m)."
    )
    step: str | None = Field(
        None, description="Resolution step (e.g. 30s); default: about 240 points over the range."
    )


@dataclass
class QueryOutcome:
    """What a range query found, ranked by current value (highest first)."""

    promql: str
    window: Window
    ranked: list[SeriesStats]
    samples: list[Sample]
    notes: list[str] = field(default_factory=list)


def window_for(ctx: ToolContext, range_text: str, step: str | None = None) -> Window:
    """The window of a range query within the configured limits."""
    limits = ctx.prometheus
    if limits is None or not limits.url:
        raise ToolError("no Prometheus is configured; set OPSBOT_PROMETHEUS_URL")
    return plan_window(range_text, step, max_points=limits.max_points, max_range=limits.max_range)


def prometheus(ctx: ToolContext) -> Prometheus:
    if ctx.prometheus is None or not ctx.prometheus.url:
        raise ToolError("no Prometheus is configured; set OPSBOT_PROMETHEUS_URL")
    return Prometheus(ctx.prometheus, query_timeout=ctx.prometheus.query_timeout)


def metric_names_in(promql: str) -> list[str]:
    """Identifiers of a PromQL expression that can be metric names (not functions,
    keywords, label names in braces or strings)."""
    text = _STRINGS.sub('""', promql)
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # range selectors and subqueries
    text = re.sub(r"\boffset\s+-?[0-9a-z]+|@\s*[0-9a-z().]+|\b\d[\w.]*", " ", text)
    names = []
    for match in _IDENT.finditer(text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _PROMQL_WORDS:
            continue  # a function call or a keyword
        names.append(word)
    return list(dict.fromkeys(names))


def run_range(client: Prometheus, promql: str, window: Window) -> QueryOutcome:
    samples = client.range(promql, window.start, window.end, window.step)
    ranked = [s for s in (stats(sample) for sample in samples) if s is not None]
    ranked.sort(key=lambda s: s.current, reverse=True)
    order = {id(s.labels): i for i, s in enumerate(ranked)}
    samples.sort(key=lambda s: order.get(id(s.labels), len(order)))
    return QueryOutcome(promql, window, ranked, samples, list(window.notes))


def explain_empty(client: Prometheus, promql: str, window: Window) -> str:
    """Why a query found nothing: a metric that does not exist (with the closest names), or
    no data in the range."""
    known = set(client.metric_names())
    missing = [name for name in metric_names_in(promql) if name not in known]
    if missing:
        close = difflib.get_close_matches(missing[0], known, n=5, cutoff=0.5)
        hint = f" Closest metric names: {', '.join(close)}." if close else ""
        return f"No metric named `{missing[0]}` exists in Prometheus.{hint}"
    return (
        f"`{promql}` returned no series over the last {format_duration(window.seconds)}; "
        "the metrics exist, so the label matchers or the range may select nothing."
    )


def describe(s: SeriesStats, varying: set[str]) -> str:
    line = (
        f"now {fmt(s.current)} · min {fmt(s.minimum)} · max {fmt(s.maximum)} · mean {fmt(s.mean)}"
    )
    if s.change is not None and s.change.before != s.change.after:
        verb = "rose" if s.change.after > s.change.before else "fell"
        when = datetime.fromtimestamp(s.change.at, UTC).strftime("%H:%M UTC")
        line += (
            f" · biggest change: {verb} from {fmt(s.change.before)} to {fmt(s.change.after)} "
            f"at {when}"
        )
    return line


def chart_path(ctx: ToolContext) -> Path:
    folder = ctx.charts_dir or Path(tempfile.gettempdir()) / "opsbot-charts"
    return folder / f"chart-{uuid.uuid4().hex[:12]}.png"


def outcome_result(
    tool: str, outcome: QueryOutcome, ctx: ToolContext, *, title: str | None = None
) -> ToolResult:
    """Figures of the top series as evidence, one chart, and a headline with the query."""
    max_series = min(ctx.prometheus.max_series if ctx.prometheus else 10, len(COLOURS))
    top = outcome.ranked[:max_series]
    rest = len(outcome.ranked) - len(top)
    varying = varying_labels([Sample(s.labels, []) for s in outcome.ranked])
    chart = render_chart(
        outcome.samples[: len(top)], title or outcome.promql, chart_path(ctx), rest=rest
    )
    span = format_duration(outcome.window.seconds)
    evidence = [
        Evidence(
            kind="metric",
            title=series_name(s.labels, varying) or outcome.promql,
            source=outcome.promql,
            section=f"last {span}",
            text=describe(s, varying),
        )
        for s in top
    ]
    if rest:
        evidence.append(
            Evidence(
                kind="note",
                title=f"{rest} more series",
                source=outcome.promql,
                text=f"{rest} series with lower current values are not shown.",
            )
        )
    lead = top[0]
    who = series_name(lead.labels, varying) or "the result"
    count = f"{len(outcome.ranked)} series" if len(outcome.ranked) > 1 else "1 series"
    message = f"`{outcome.promql}` over {span} ({count}): {who} is {fmt(lead.current)} now"
    if lead.change is not None and lead.change.before != lead.change.after:
        when = datetime.fromtimestamp(lead.change.at, UTC).strftime("%H:%M UTC")
        message += f", was {fmt(lead.change.before)} before {when}"
    if outcome.notes:
        message += f" (note: {'; '.join(outcome.notes)})"
    return ToolResult(
        tool=tool, status="ok", message=message, evidence=evidence, images=[str(chart.path)]
    )


def query_metrics(ctx: ToolContext, promql: str, range_text: str, step: str | None) -> ToolResult:
    window = window_for(ctx, range_text, step)
    with prometheus(ctx) as client:
        try:
            outcome = run_range(client, promql.strip(), window)
        except PrometheusQueryError as exc:
            raise PrometheusQueryError(f"{exc} (query: `{promql.strip()}`)") from None
        if not outcome.ranked:
            return ToolResult(
                tool="prometheus_query",
                status="no_data",
                message=explain_empty(client, promql.strip(), window),
                evidence=[],
            )
    return outcome_result("prometheus_query", outcome, ctx)


@register(
    name="prometheus_query",
    description=(
        "Run a PromQL expression against Prometheus over a time range; returns current value, "
        "min/max/mean and biggest change per series, and a chart. Use exact metric names "
        "(find them with metrics_question or metric discovery first)."
    ),
    args_schema=PrometheusQueryInput,
    status_text="querying Prometheus…",
    keywords=("promql",),
    intent=intents.promql,
    query_arg="promql",
    rate_group="prometheus",
    requires=("prometheus",),
)
def prometheus_query(args: PrometheusQueryInput, ctx: ToolContext) -> ToolResult:
    return query_metrics(ctx, args.promql, args.range, args.step)
