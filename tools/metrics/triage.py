"""Triage of a firing alert, evidence first:

1. the alert itself (labels, summary, description, since when);
2. its own expression over the last hour (the rule's ``expr`` from ``/api/v1/rules``, or the
   ``g0.expr`` of its generator URL), with a chart;
3. related metrics of the same job / instance / namespace that changed most in that hour;
4. its runbook: the ``runbook_url`` annotation first, then the runbook index with its text;
5. a log RCA when a Loki is configured, over the alert's namespace / job.

Each part that fails (no rule found, Prometheus down, no index) becomes a note and the
rest still runs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field

from tools.base import Evidence, ToolContext, ToolError, ToolResult, register
from tools.metrics.client import Prometheus
from tools.metrics.discovery import Catalog, catalog_for, names_with, quote
from tools.metrics.query import QueryOutcome, outcome_result, prometheus, run_range, window_for
from tools.metrics.summary import fmt, stats

log = logging.getLogger(__name__)
WINDOW = "1h"
#: Labels that tie other metrics to the alert's subject, most specific last.
SCOPE_LABELS = ("namespace", "job", "service", "instance", "pod")
MAX_RELATED_NAMES = 25
RELATED_SHOWN = 3
#: A related metric must move at least this much (relative) to be reported.
MIN_RELATIVE_CHANGE = 0.3


class AlertTriageInput(BaseModel):
    alertname: str = Field(..., min_length=1, description="The alert's name.")
    labels: dict[str, str] = Field(default_factory=dict, description="The alert's labels.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="The alert's annotations (summary, runbook_url...)."
    )
    starts_at: str | None = Field(None, description="When it started firing (RFC 3339).")
    generator_url: str | None = Field(None, description="Link to the expression in Prometheus.")


def rule_expression(client: Prometheus, args: AlertTriageInput) -> str | None:
    """The alert rule's expression: the rule of that name whose labels the alert carries,
    else the only rule of that name."""
    named = [r for r in client.alert_rules() if r.get("name") == args.alertname]
    for rule in named:
        labels = rule.get("labels") or {}
        if all(args.labels.get(k) == v for k, v in labels.items()):
            return str(rule.get("query") or "") or None
    return str(named[0].get("query") or "") or None if len(named) == 1 else None


_THRESHOLD = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(?:bool\s+)?(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


def split_threshold(expr: str) -> tuple[str, str | None]:
    """``rate(x) > 0.05`` → (``rate(x)``, ``> 0.05``): a comparison with a number at the top
    level filters the series, so the graph shows the value and the answer names the
    threshold."""
    match = _THRESHOLD.search(expr)
    if not match:
        return expr.strip(), None
    head = expr[: match.start()]
    depth = 0
    for char in head:
        depth += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(char, 0)
    if depth != 0 or not head.strip():
        return expr.strip(), None
    return head.strip(), f"{match.group(1)} {match.group(2)}"


def own_series_first(outcome: QueryOutcome, labels: dict[str, str]) -> None:
    """The series of the alert itself (its labels carry the series') lead; the others stay
    for comparison."""

    def other(series_labels: dict[str, str]) -> bool:
        return any(labels.get(k) != v for k, v in series_labels.items() if k != "__name__")

    outcome.ranked.sort(key=lambda s: other(s.labels))
    outcome.samples.sort(key=lambda s: other(s.labels))


def generator_expression(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("g0.expr")
    return values[0] if values else None


def alert_evidence(args: AlertTriageInput) -> Evidence:
    notes = args.annotations
    lines = [notes[k] for k in ("summary", "description", "message") if notes.get(k)]
    labels = " ".join(f"{k}={v}" for k, v in sorted(args.labels.items()) if k != "alertname")
    if labels:
        lines.append(f"labels: {labels}")
    if args.starts_at:
        lines.append(f"firing since {args.starts_at}")
    return Evidence(
        kind="alert",
        title=args.alertname,
        source=args.generator_url or "Alertmanager",
        section=args.labels.get("severity", ""),
        text="\n".join(lines),
    )


def scope_matchers(labels: dict[str, str]) -> list[str]:
    return [f"{k}={quote(labels[k])}" for k in SCOPE_LABELS if labels.get(k)]


def related_query(name: str, kind: str, matcher: str) -> str | None:
    if kind == "histogram" or name.endswith(("_bucket", "_sum")):
        return None
    if kind == "counter" or name.endswith(("_total", "_count")):
        return f"sum(rate({name}{{{matcher}}}[5m]))"
    return f"sum({name}{{{matcher}}})"


def related_changes(
    client: Prometheus, catalog: Catalog, args: AlertTriageInput, expr: str | None, ctx: ToolContext
) -> list[Evidence]:
    """Metrics of the alert's scope whose level changed most in the last hour (those of the
    alert's own expression ``expr`` are already graphed)."""
    matchers = scope_matchers(args.labels)
    if not matchers:
        return []
    matcher = ",".join(matchers[:2])  # the broadest two: namespace/job, not the pod
    kinds = {f.name: f.type for f in catalog.families}
    names = sorted(names_with(client, "{" + matcher + "}", hours=1))[:MAX_RELATED_NAMES]
    window = window_for(ctx, WINDOW, "1m")
    found: list[tuple[float, Evidence]] = []
    for name in names:
        base = name.removesuffix("_total").removesuffix("_count")
        query = related_query(name, kinds.get(name) or kinds.get(base, ""), matcher)
        if query is None or (expr and name in expr):
            continue
        samples = client.range(query, window.start, window.end, window.step)
        figures = stats(samples[0]) if samples else None
        if figures is None or figures.change is None:
            continue
        before, after = figures.change.before, figures.change.after
        relative = abs(after - before) / max(abs(before), 1e-9)
        if relative < MIN_RELATIVE_CHANGE:
            continue
        when = datetime.fromtimestamp(figures.change.at, UTC).strftime("%H:%M UTC")
        verb = "rose" if after > before else "fell"
        found.append(
            (
                relative,
                Evidence(
                    kind="metric",
                    title=f"{name} ({matcher})",
                    source=query,
                    section="related, last 1h",
                    text=f"{verb} from {fmt(before)} to {fmt(after)} at {when}; "
                    f"now {fmt(figures.current)}",
                ),
            )
        )
    found.sort(key=lambda item: item[0], reverse=True)
    return [ev for _, ev in found[:RELATED_SHOWN]]


def runbook_evidence(ctx: ToolContext, args: AlertTriageInput) -> list[Evidence]:
    from knowledge.index import snippet
    from tools.runbooks import search_runbooks

    notes = args.annotations
    url = notes.get("runbook_url") or notes.get("runbook") or ""
    query = " ".join(
        part
        for part in (args.alertname, notes.get("summary"), notes.get("description"), url)
        if part
    )
    hits = search_runbooks(ctx, query, k=2)
    return [
        Evidence(
            kind="runbook",
            title=hit.title,
            source=hit.doc,
            section=hit.section,
            text=snippet(hit.text, 1200 if rank == 0 else 400),
            score=hit.score,
        )
        for rank, hit in enumerate(hits)
    ]


def log_evidence(ctx: ToolContext, args: AlertTriageInput) -> tuple[list[Evidence], str | None]:
    from tools.logs.tool import LogRcaInput, log_rca

    scope = {k: args.labels[k] for k in ("namespace", "job", "app") if args.labels.get(k)}
    if not scope:
        return [], "no namespace, job or app label to select logs with"
    selector = "{" + ",".join(f"{k}={quote(v)}" for k, v in scope.items()) + "}"
    result = log_rca(LogRcaInput(loki_query=selector, minutes=60), ctx)
    return result.evidence, (None if result.status == "ok" else result.message)


@dataclass
class Findings:
    """What a triage has found so far."""

    headline: str
    evidence: list[Evidence] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def metric_findings(
    client: Prometheus, args: AlertTriageInput, ctx: ToolContext, found: Findings
) -> None:
    """The alert's expression graphed (threshold split off) and the related metrics."""
    expr = rule_expression(client, args) or generator_expression(args.generator_url)
    if expr:
        value, threshold = split_threshold(expr)
        outcome = run_range(client, value, window_for(ctx, WINDOW))
        own_series_first(outcome, args.labels)
        if outcome.ranked:
            graphed = outcome_result("alert_triage", outcome, ctx, title=args.alertname)
            found.evidence += graphed.evidence
            found.images += graphed.images
            found.headline += f": {graphed.message}"
            if threshold:
                found.headline += f" (it fires at {threshold})"
        else:
            found.notes.append(f"its expression `{expr}` returns no series now")
    else:
        found.notes.append("no alert rule of that name was found in Prometheus")
    found.evidence += related_changes(client, catalog_for(client, None), args, expr, ctx)


def triage(args: AlertTriageInput, ctx: ToolContext) -> ToolResult:
    headline = f"{args.alertname} is firing"
    if args.labels.get("severity"):
        headline += f" ({args.labels['severity']})"
    found = Findings(headline, evidence=[alert_evidence(args)])
    if ctx.prometheus is not None and ctx.prometheus.url:
        try:
            with prometheus(ctx) as client:
                metric_findings(client, args, ctx, found)
        except ToolError as exc:
            found.notes.append(f"metrics: {exc}")
    else:
        found.notes.append("no Prometheus is configured, so no metrics were queried")
    try:
        runbooks = runbook_evidence(ctx, args)
        found.evidence += runbooks
        if runbooks:
            found.headline += f"; runbook: {runbooks[0].where}"
    except ToolError as exc:
        found.notes.append(f"runbooks: {exc}")
    if ctx.loki is not None:
        try:
            logs, problem = log_evidence(ctx, args)
            found.evidence += logs
            if problem:
                found.notes.append(f"logs: {problem}")
        except ToolError as exc:
            found.notes.append(f"logs: {exc}")
    notes = f" (notes: {'; '.join(found.notes)})" if found.notes else ""
    return ToolResult(
        tool="alert_triage",
        status="ok",
        message=found.headline + notes,
        evidence=found.evidence,
        images=found.images,
    )


@register(
    name="alert_triage",
    description=(
        "Triage a firing alert: graph its rule's expression over the last hour, find related "
        "metrics of the same job/instance/namespace that changed, look up its runbook, and "
        "run a log RCA when a log source is configured."
    ),
    args_schema=AlertTriageInput,
    status_text="triaging the alert…",
    rate_group="prometheus",
)
def alert_triage(args: AlertTriageInput, ctx: ToolContext) -> ToolResult:
    return triage(args, ctx)
