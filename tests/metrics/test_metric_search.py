"""Metric discovery for a tool-calling model, and a PromQL error that shows its query."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.promstack import PromStack
from evals.scorers.metrics import prometheus_settings
from tools.base import ToolContext
from tools.metrics.client import PrometheusQueryError
from tools.metrics.metric_search import MetricSearchInput, metric_search
from tools.metrics.query import query_metrics

pytestmark = pytest.mark.integration


def context(tmp_path: Path, url: str) -> ToolContext:
    return ToolContext(
        index_dir=tmp_path,
        embedding_model="all-MiniLM-L6-v2",
        prometheus=prometheus_settings(url),
        charts_dir=tmp_path,
    )


def test_metric_search_gives_names_types_help_and_label_values(
    tmp_path: Path, prom_stack: PromStack
) -> None:
    result = metric_search(
        MetricSearchInput(query="kafka consumer lag"), context(tmp_path, prom_stack.url)
    )
    top = result.evidence[0]
    assert top.title == "kafka_consumer_lag" and top.section == "gauge"
    assert "partition: 0, 1, 2, 3, 4, 5" in top.text and "topic: payment-events" in top.text
    latency = metric_search(
        MetricSearchInput(query="request latency", k=3), context(tmp_path, prom_stack.url)
    )
    histogram = next(e for e in latency.evidence if e.title == "http_request_duration_seconds")
    assert histogram.section == "histogram" and "le:" not in histogram.text


def test_a_promql_error_shows_prometheus_text_and_the_query(
    tmp_path: Path, prom_stack: PromStack
) -> None:
    with pytest.raises(PrometheusQueryError) as caught:
        query_metrics(context(tmp_path, prom_stack.url), "sum(rate(up[5m]) by", "1h", None)
    message = str(caught.value)
    assert "parse error" in message and "(query: `sum(rate(up[5m]) by`)" in message
