"""Metrics and alert triage through the real bot: webhook to first message and to triage
report, `/ops metrics` over 1 h of ~50 series, and the largest query the limits allow.

The bot runs under uvicorn with no model configured (the embedded default: answers from
evidence), against the Slack stand-in and a real Prometheus over the incident data of
``evals.promstack``. Writes bench/results/metrics_alerts.json.

    python -m bench.metrics_alerts
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from knowledge.embedder import get_embedder
from knowledge.index import build_index

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "metrics_alerts.json"
SECRET, TOKEN, CHANNEL = "bench-secret", "xoxb-bench", "C0ALERTS"
ROUNDS = 5
#: ~50 series: every (job, instance, method, code) of the HTTP counters, and CPU per instance.
FIFTY = "rate(http_requests_total[5m]) or rate(process_cpu_seconds_total[5m])"
TRIAGED = [("HighHttp5xxErrorRate", "checkout"), ("HighP99Latency", "checkout")]


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(values), 1),
        "max_ms": round(1000 * max(values), 1),
    }


def notification(alertname: str, job: str, key: str) -> dict[str, Any]:
    labels = {"alertname": alertname, "job": job, "severity": "critical"}
    return {
        "version": "4",
        "groupKey": key,
        "status": "firing",
        "receiver": "opsbot",
        "groupLabels": {"alertname": alertname, "job": job},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{job}: {alertname}"},
        "alerts": [{"status": "firing", "labels": labels, "annotations": {}}],
    }


def wait(standin: SlackStandIn, method: str, test: Any, timeout: float = 120) -> float:
    standin.wait_for(method, test, timeout)
    return time.perf_counter()


def webhook_rounds(url: str, standin: SlackStandIn) -> dict[str, Any]:
    first, report = [], []
    for i in range(ROUNDS):
        alertname, job = TRIAGED[i % len(TRIAGED)]
        key = f'{{}}:{{alertname="{alertname}", job="{job}", round="{i}"}}'
        standin.clear()
        began = time.perf_counter()
        response = httpx.post(url, json=notification(alertname, job, key), timeout=10)
        assert response.status_code == 202, response.text
        first.append(
            wait(standin, "chat.postMessage", lambda c: c.params["channel"] == CHANNEL) - began
        )
        done = wait(standin, "chat.update", lambda c: "is firing" in c.params.get("text", ""))
        report.append(done - began)
    return {"webhook_to_first_message": ms(first), "webhook_to_report": ms(report)}


def metrics_command(sender: SignedSender, standin: SlackStandIn, text: str) -> dict[str, Any]:
    times, charts, answer = [], [], ""
    for _ in range(ROUNDS):
        standin.clear()
        began = time.perf_counter()
        sender.slash_command(f"metrics {text}")
        call = standin.wait_for(
            "chat.update", lambda c: " series" in c.params.get("text", ""), timeout=120
        )
        times.append(time.perf_counter() - began)
        charts.append(wait(standin, "files.completeUploadExternal", lambda c: True) - began)
        answer = call.params["text"]
    return {"query": text, "answer": answer[:300], "to_answer": ms(times), "to_chart": ms(charts)}


def main() -> None:
    from evals.promstack import running_stack
    from tests.integration.conftest import running_bot

    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp) / "stack") as stack:
        index = Path(tmp) / "index"
        build_index(ROOT / "knowledge" / "runbooks", index, get_embedder())
        with SlackStandIn(token=TOKEN) as standin:
            settings = Settings(
                data_dir=Path(tmp) / "data",
                index={"dir": index},  # type: ignore[arg-type]
                slack={"bot_token": TOKEN, "signing_secret": SECRET, "api_url": standin.base_url},  # type: ignore[arg-type]
                prometheus={"url": stack.url, "rate_limit": "1000/minute"},  # type: ignore[arg-type]
                alerts={"channel": CHANNEL},  # type: ignore[arg-type]
            )
            limits = settings.prometheus
            with running_bot(settings) as url, SignedSender(url, SECRET) as sender:
                result = {
                    "model": "none (embedded default: evidence answers)",
                    **webhook_rounds(url.replace("/slack/events", "/alertmanager"), standin),
                    "metrics_1h_about_50_series": metrics_command(sender, standin, f"{FIFTY} 1h"),
                    "largest_allowed": {
                        "limits": {
                            "max_range": limits.max_range,
                            "max_points": limits.max_points,
                            "max_series_drawn": limits.max_series,
                        },
                        **metrics_command(sender, standin, f"{FIFTY} {limits.max_range} 1s"),
                    },
                }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
