"""Metrics and alerts end to end: the real bot over HTTP (signed Slack requests, the Slack
stand-in), a real Prometheus over the incident data, and a real Alertmanager whose
webhook opens triage threads."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib import image

from bot.settings import Settings
from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn
from evals.promstack import DEFAULT_RULES, AlertingStack, PromStack
from tests.integration.conftest import SECRET, TOKEN, running_bot
from tools.metrics.chart import COLOURS

pytestmark = pytest.mark.integration
WEBHOOK_TOKEN = "webhook-test-token"
ALERTS_CHANNEL = "C0ALERTS"
NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


def settings_for(tmp_path: Path, index: Path, standin: SlackStandIn, prom_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        index={"dir": index},  # type: ignore[arg-type]
        slack={"bot_token": TOKEN, "signing_secret": SECRET, "api_url": standin.base_url},  # type: ignore[arg-type]
        prometheus={"url": prom_url, "rate_limit": "100/minute"},  # type: ignore[arg-type]
        alerts={"channel": ALERTS_CHANNEL, "triage_interval": 600},  # type: ignore[arg-type]
        webhook={"token": WEBHOOK_TOKEN},  # type: ignore[arg-type]
    )


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def bot_url(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn, prom_stack: PromStack
) -> Iterator[str]:
    with running_bot(settings_for(tmp_path, sample_index, standin, prom_stack.url)) as url:
        yield url


@pytest.fixture
def bot(bot_url: str) -> Iterator[SignedSender]:
    with SignedSender(bot_url, SECRET) as sender:
        yield sender


def webhook_url(bot_url: str) -> str:
    return bot_url.replace("/slack/events", "/alertmanager")


def answer(standin: SlackStandIn, needle: str, timeout: float = 90) -> RecordedCall:
    return standin.wait_for("chat.update", lambda c: needle in c.params.get("text", ""), timeout)


def uploaded_png(standin: SlackStandIn, thread_ts: str) -> np.ndarray:
    complete = standin.wait_for(
        "files.completeUploadExternal", lambda c: c.params.get("thread_ts") == thread_ts, 60
    )
    assert complete.params["channel_id"] in ("C0OPS", ALERTS_CHANNEL)
    content = next(
        c.content for c in standin.calls_to("files.upload") if (c.content or b"")[:4] == b"\x89PNG"
    )
    assert content is not None and len(content) > 5000
    return image.imread(io.BytesIO(content), format="png")[:, :, :3]


def lines_in(pixels: np.ndarray) -> int:
    """How many lines are drawn: lines take the chart colours in order, so this counts the
    colours present from the first on."""
    count = 0
    for colour in COLOURS:
        if np.all(np.abs(pixels - np.array(colour)) < 0.02, axis=2).sum() < 200:
            break
        count += 1
    return count


def test_metrics_command_gives_figures_the_promql_and_a_chart_in_the_thread(
    bot: SignedSender, standin: SlackStandIn, prom_stack: PromStack
) -> None:
    promql = 'sum by (instance) (rate(http_requests_total{job="checkout",code=~"5.."}[5m]))'
    response = bot.slash_command(f"metrics {promql} 1h")
    assert response.status_code == 200
    thread_ts = thread_of(standin, "C0OPS")
    done = answer(standin, "over 1h (2 series)")
    text = done.params["text"]
    assert promql in text and "checkout-1:8080" in text  # checkout-1 takes more of the 5xx
    blocks = json.dumps(done.params["blocks"])
    assert "biggest change: rose from" in blocks
    incident = prom_stack.incident_at.strftime("%H:%M")
    assert incident in blocks or "rose" in blocks
    pixels = uploaded_png(standin, thread_ts)
    assert pixels.shape[:2] == (450, 1000)
    assert lines_in(pixels) == 2


def test_promql_errors_unknown_metrics_and_empty_results_are_explained(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    assert "PromQL expression" in bot.slash_command("metrics").text
    bot.slash_command("metrics rate(http_requests_total[5m]")
    bad = answer(standin, "Prometheus rejected the query")
    assert "parse error" in bad.params["text"]
    bot.slash_command("metrics rate(http_request_total[5m])")
    unknown = answer(standin, "No metric named")
    assert "http_requests_total" in unknown.params["text"]  # the closest name
    bot.slash_command('metrics up{job="no-such-job"}')
    assert "returned no series" in answer(standin, "returned no series").params["text"]
    bot.slash_command("metrics up 90d")
    assert "OPSBOT_PROMETHEUS_MAX_RANGE" in answer(standin, "MAX_RANGE").params["text"]


def test_a_question_in_a_thread_is_grounded_and_shows_its_promql(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    bot.event(
        {
            "type": "app_mention",
            "user": "U0ALICE",
            "channel": "C0OPS",
            "ts": "1700000500.000100",
            "text": "<@U0BOT> p99 latency of checkout over the last hour?",
        }
    )
    done = answer(standin, "histogram_quantile")
    text = done.params["text"]
    assert 'job="checkout"' in text and "http_request_duration_seconds_bucket" in text
    assert "How the question was read" in json.dumps(done.params["blocks"])
    bot.event(
        {
            "type": "app_mention",
            "user": "U0ALICE",
            "channel": "C0OPS",
            "ts": "1700000600.000100",
            "text": '<@U0BOT> graph the metric {job="x\\"}"} latency',  # quotes and braces
        }
    )
    odd = standin.wait_for(
        "chat.update",
        lambda c: c.params.get("ts") != done.params["ts"] and "…" not in c.params["text"],
        90,
    )
    assert odd.params["text"]  # answered, whatever it found; the bot stays up
    assert bot.slash_command("help").status_code == 200


def test_alerts_command_lists_what_fires_grouped_by_severity(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    bot.slash_command("alerts")
    done = answer(standin, "alert(s) firing", timeout=60)
    assert "most severe: HighHttp5xxErrorRate (critical)" in done.params["text"]
    blocks = json.dumps(done.params["blocks"])
    assert "PodCrashLooping" in blocks and "firing for" in blocks


def test_prometheus_that_is_down_gets_a_clear_message(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    settings = settings_for(tmp_path, sample_index, standin, "http://127.0.0.1:9")
    with running_bot(settings) as url, SignedSender(url, SECRET) as sender:
        sender.slash_command("metrics up")
        down = answer(standin, "unreachable")
        assert "http://127.0.0.1:9" in down.params["text"]


def only(rule_name: str) -> dict[str, Any]:
    rules = copy.deepcopy(DEFAULT_RULES)
    for group in rules["groups"]:
        group["rules"] = [r for r in group["rules"] if r["alert"] == rule_name]
    rules["groups"] = [g for g in rules["groups"] if g["rules"]]
    return rules


def test_a_firing_alert_opens_a_thread_triages_it_and_resolves_it(
    bot_url: str,
    standin: SlackStandIn,
    alerting_stack: Callable[..., AlertingStack],
) -> None:
    alerting_stack(
        webhook_url(bot_url), bearer_token=WEBHOOK_TOKEN, rules=only("HighHttp5xxErrorRate")
    )
    header = standin.wait_for(
        "chat.postMessage",
        lambda c: c.params["channel"] == ALERTS_CHANNEL and "FIRING" in c.params["text"],
        timeout=60,
    )
    assert "HighHttp5xxErrorRate" in header.params["text"]
    thread_ts = thread_of(standin, ALERTS_CHANNEL)
    report = answer(standin, "HighHttp5xxErrorRate is firing (critical)", timeout=120)
    text = report.params["text"]
    assert "over 1h" in text and "runbook: High" in text
    blocks = json.dumps(report.params["blocks"])
    assert "services/HighHttp5xxErrorRate.md" in blocks  # found by its runbook_url
    assert "checkout" in blocks
    pixels = uploaded_png(standin, thread_ts)
    assert lines_in(pixels) >= 1

    # The same group again: a note in the same thread, no second triage.
    triages = len([c for c in standin.calls_to("chat.update") if "triaging" in c.params["text"]])
    group_key = '{}:{alertname="HighHttp5xxErrorRate", job="checkout"}'
    repeat = notification(group_key, "firing")
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    assert httpx.post(webhook_url(bot_url), json=repeat, headers=headers).status_code == 202
    note = standin.wait_for("chat.postMessage", lambda c: "Still firing" in c.params["text"], 30)
    assert note.params["thread_ts"] == thread_ts
    time.sleep(0.5)
    after = len([c for c in standin.calls_to("chat.update") if "triaging" in c.params["text"]])
    assert after == triages

    # Resolved: the first message says so, with how long it lasted.
    resolved = notification(group_key, "resolved")
    assert httpx.post(webhook_url(bot_url), json=resolved, headers=headers).status_code == 202
    update = standin.wait_for(
        "chat.update",
        lambda c: c.params.get("ts") == thread_ts and "RESOLVED" in c.params["text"],
        30,
    )
    assert "lasted" in json.dumps(update.params["blocks"])
    standin.wait_for("chat.postMessage", lambda c: "Resolved after" in c.params["text"], 30)


def thread_of(standin: SlackStandIn, channel: str) -> str:
    """The thread the bot answers in (its status message's thread)."""
    status = standin.wait_for(
        "chat.postMessage",
        lambda c: c.params["channel"] == channel and bool(c.params.get("thread_ts")),
        60,
    )
    return str(status.params["thread_ts"])


def notification(group_key: str, status: str) -> dict[str, Any]:
    labels = {"alertname": "HighHttp5xxErrorRate", "job": "checkout", "severity": "critical"}
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "opsbot",
        "groupLabels": {"alertname": "HighHttp5xxErrorRate", "job": "checkout"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "checkout is failing requests"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "checkout is failing requests"},
                "startsAt": "2026-11-23T10:00:00Z",
                "endsAt": "2026-11-23T10:30:00Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph?g0.expr=up",
                "fingerprint": "abc",
            }
        ],
    }


def test_the_webhook_refuses_bad_callers_and_bodies_with_reasons(
    bot_url: str, standin: SlackStandIn
) -> None:
    url = webhook_url(bot_url)
    good = notification('{}:{alertname="X"}', "firing")
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    assert httpx.post(url, json=good).status_code == 401
    assert httpx.post(url, json=good, headers={"Authorization": "Bearer nope"}).status_code == 401
    not_json = httpx.post(url, content=b"{not json", headers=auth)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    wrong = httpx.post(url, json={"version": "4", "alerts": []}, headers=auth)
    assert wrong.status_code == 422 and "groupKey" in wrong.json()["error"]
    old = httpx.post(url, json={**good, "version": "3"}, headers=auth)
    assert old.status_code == 422 and "version" in old.json()["error"]
    huge = httpx.post(url, content=b"x" * 2_000_000, headers=auth)
    assert huge.status_code == 413
    time.sleep(0.3)
    assert standin.calls_to("chat.postMessage") == []  # nothing reached Slack
