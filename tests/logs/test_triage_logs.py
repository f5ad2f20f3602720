"""Alert triage reads the alert's logs from Loki when one is configured."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.logs.conftest import FakeLoki
from tools.base import ToolContext
from tools.metrics.triage import AlertTriageInput, triage


def test_triage_runs_a_log_rca_over_the_alerts_namespace_and_job(
    loki: str, sample_index: Path
) -> None:
    ctx = ToolContext(
        index_dir=sample_index,
        embedding_model="all-MiniLM-L6-v2",
        loki=SimpleNamespace(url=loki, token=None, limit=100, timeout=5),
    )
    alert = AlertTriageInput(
        alertname="PodCrashLooping",
        labels={"alertname": "PodCrashLooping", "namespace": "shop", "pod": "checkout-1"},
        annotations={"summary": "Pod shop/checkout-1 is restarting"},
    )
    result = triage(alert, ctx)
    assert FakeLoki.params["query"] == '{namespace="shop"}'
    assert any(e.kind == "log" for e in result.evidence)
    assert any(e.source == "kubernetes/PodCrashLooping.md" for e in result.evidence)


def test_a_loki_error_is_a_note_and_the_rest_of_the_triage_stays(
    loki: str, sample_index: Path
) -> None:
    FakeLoki.mode = "error"
    ctx = ToolContext(
        index_dir=sample_index,
        embedding_model="all-MiniLM-L6-v2",
        loki=SimpleNamespace(url=loki, token=None, limit=100, timeout=5),
    )
    alert = AlertTriageInput(alertname="PodCrashLooping", labels={"job": "checkout"})
    result = triage(alert, ctx)
    assert "logs:" in result.message and "parse error" in result.message
    assert any(e.source == "kubernetes/PodCrashLooping.md" for e in result.evidence)
