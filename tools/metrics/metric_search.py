"""Metric discovery as a tool: the metric families a question most likely means, with type,
help and the labels their series carry. A tool-calling model grounds its PromQL in this
(the model-free path of ``metrics_question`` uses the same ranking)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from tools import intents
from tools.base import Evidence, ToolContext, ToolResult, register
from tools.metrics.client import Prometheus
from tools.metrics.discovery import catalog_for, rank_families, series_names
from tools.metrics.query import prometheus

#: Label values listed per label (the rest are counted).
VALUES_SHOWN = 8


class MetricSearchInput(BaseModel):
    query: str = Field(..., min_length=1, description="What the metric measures, in words.")
    k: int = Field(5, ge=1, le=15, description="How many metric families to return.")


def labels_of(client: Prometheus, names: set[str]) -> str:
    """``label: v1, v2, … (+n)`` for the labels of the series named ``names``."""
    match = "{__name__=~" + '"' + "|".join(sorted(names)) + '"}'
    values: dict[str, set[str]] = {}
    for series in client.series(match, *window()):
        for label, value in series.items():
            if label not in ("__name__", "le"):
                values.setdefault(label, set()).add(value)
    parts = []
    for label, seen in sorted(values.items()):
        shown = sorted(seen)[:VALUES_SHOWN]
        more = f" (+{len(seen) - len(shown)})" if len(seen) > len(shown) else ""
        parts.append(f"{label}: {', '.join(shown)}{more}")
    return "; ".join(parts)


def window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC)
    return end - timedelta(hours=1), end


@register(
    name="metric_search",
    description=(
        "Find the real metric names in Prometheus for something to measure: returns metric "
        "families with their type, help text and label values, to write PromQL with "
        "(then run it with prometheus_query)."
    ),
    args_schema=MetricSearchInput,
    status_text="looking up metrics…",
    keywords=("metric", "metrics", "names", "available", "exist", "exists", "discover"),
    intent=intents.which_metrics,
    query_arg="query",
    rate_group="prometheus",
    requires=("prometheus",),
)
def metric_search(args: MetricSearchInput, ctx: ToolContext) -> ToolResult:
    from knowledge.embedder import get_embedder

    embedder = get_embedder(ctx.embedding_model)
    with prometheus(ctx) as client:
        catalog = catalog_for(client, embedder)
        candidates = rank_families(args.query, catalog, embedder, k=args.k)
        if not candidates:
            return ToolResult(
                tool="metric_search", status="no_data", message="Prometheus has no metrics."
            )
        evidence = [
            Evidence(
                kind="metric",
                title=c.family.name,
                source="Prometheus metadata",
                section=c.family.type,
                text="\n".join(
                    part
                    for part in (c.family.help, labels_of(client, series_names(c.family)))
                    if part
                ),
                score=round(c.score, 3),
            )
            for c in candidates
        ]
    names = ", ".join(c.family.name for c in candidates)
    return ToolResult(
        tool="metric_search",
        status="ok",
        message=f"Metrics that may measure {args.query!r}: {names}",
        evidence=evidence,
    )
