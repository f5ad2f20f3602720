"""Alert triage: the alert's own expression graphed, related metrics that changed, its
runbook; each part that fails becomes a note and the rest still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.promstack import PromStack
from evals.scorers.metrics import prometheus_settings
from tools.base import ToolContext
from tools.metrics.triage import (
    AlertTriageInput,
    generator_expression,
    split_threshold,
    triage,
)

ALERT = AlertTriageInput(
    alertname="HighHttp5xxErrorRate",
    labels={
        "alertname": "HighHttp5xxErrorRate",
        "job": "checkout",
        "severity": "critical",
        "team": "shop",
    },  # fmt: skip
    annotations={
        "summary": "checkout is failing requests",
        "runbook_url": "https://runbooks.example.com/services/HighHttp5xxErrorRate",
    },
)


@pytest.mark.parametrize(
    ("expr", "value", "threshold"),
    [
        ("rate(a[5m]) / rate(b[5m]) > 0.05", "rate(a[5m]) / rate(b[5m])", "> 0.05"),
        ("increase(k[10m]) > 0", "increase(k[10m])", "> 0"),
        ("up == 0", "up", "== 0"),
        ("(a > 1) and b", "(a > 1) and b", None),
        ("x", "x", None),
    ],
)  # fmt: skip
def test_a_threshold_is_split_from_the_value_it_filters(
    expr: str, value: str, threshold: str | None
) -> None:
    assert split_threshold(expr) == (value, threshold)


def test_the_generator_url_carries_the_expression() -> None:
    url = "http://prom:9090/graph?g0.expr=sum%28up%29+%3E+1&g0.tab=1"
    assert generator_expression(url) == "sum(up) > 1"
    assert generator_expression("http://prom:9090/graph") is None


def context(tmp_path: Path, index: Path, url: str) -> ToolContext:
    return ToolContext(
        index_dir=index,
        embedding_model="all-MiniLM-L6-v2",
        prometheus=prometheus_settings(url),
        charts_dir=tmp_path,
    )


@pytest.mark.integration
def test_triage_graphs_the_rule_finds_what_changed_and_its_runbook(
    tmp_path: Path, sample_index: Path, prom_stack: PromStack
) -> None:
    result = triage(ALERT, context(tmp_path, sample_index, prom_stack.url))
    assert result.status == "ok"
    assert "(it fires at > 0.05)" in result.message
    graphed = [e for e in result.evidence if e.kind == "metric" and e.section == "last 1h"]
    assert graphed[0].title == '{job="checkout"}'  # the alert's own series leads
    assert "rose from" in graphed[0].text
    related = [e for e in result.evidence if e.section == "related, last 1h"]
    assert any("process_cpu_seconds_total" in e.title and "rose" in e.text for e in related)
    runbooks = [e for e in result.evidence if e.kind == "runbook"]
    assert runbooks[0].source == "services/HighHttp5xxErrorRate.md"
    assert len(result.images) == 1 and Path(result.images[0]).stat().st_size > 5000


def test_triage_without_prometheus_still_gives_the_alert_and_its_runbook(
    tmp_path: Path, sample_index: Path
) -> None:
    down = context(tmp_path, sample_index, "http://127.0.0.1:9")
    result = triage(ALERT, down)
    assert "metrics: Prometheus at http://127.0.0.1:9 is unreachable" in result.message
    assert result.evidence[0].kind == "alert"
    assert any(e.source == "services/HighHttp5xxErrorRate.md" for e in result.evidence)
    none = ToolContext(index_dir=sample_index, embedding_model="all-MiniLM-L6-v2")
    assert "no Prometheus is configured" in triage(ALERT, none).message
