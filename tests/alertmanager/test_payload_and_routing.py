"""Alertmanager notifications: the version 4 shape, titles, and channel routing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot.alertmanager.payload import Notification
from bot.alertmanager.routing import UnroutableError, channel_for
from bot.settings import AlertsSettings
from bot.work.triage import triage_args


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="KubePodCrashLooping"}',
        "status": "firing",
        "receiver": "platform",
        "groupLabels": {"alertname": "KubePodCrashLooping", "namespace": "shop"},
        "commonLabels": {"alertname": "KubePodCrashLooping", "severity": "critical"},
        "commonAnnotations": {"runbook_url": "https://runbooks.example/KubePodCrashLooping"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "pod": "b", "namespace": "shop"},
                "annotations": {"summary": "pod b restarts"},
                "startsAt": "2026-11-23T10:05:00Z",
                "generatorURL": "http://prom/graph?g0.expr=increase%28x%5B10m%5D%29+%3E+0",
            },
            {
                "status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "pod": "a", "namespace": "shop"},
                "annotations": {"summary": "pod a restarts"},
                "startsAt": "2026-11-23T10:00:00Z",
            },
        ],
    }
    data.update(changes)
    return data


def test_a_notification_reads_its_group_and_oldest_alert() -> None:
    n = Notification.model_validate(body())
    assert n.title == "KubePodCrashLooping (namespace=shop)"
    assert n.severity == "critical" and len(n.firing) == 2
    args = triage_args(n)
    assert args["labels"]["pod"] == "a"  # the oldest firing alert
    assert args["annotations"]["runbook_url"].endswith("KubePodCrashLooping")
    assert args["annotations"]["summary"] == "pod a restarts"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"version": "3"}, "version"), ({"alerts": []}, "alerts"), ({"status": "odd"}, "status")],
)
def test_malformed_notifications_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Notification.model_validate(body(**changes))


def test_routes_by_receiver_then_label_then_default() -> None:
    routes = {"receiver=payments": "C_PAY", "severity=critical": "C_CRIT"}
    alerts = AlertsSettings(channel="C_DEFAULT", routes=routes)
    assert channel_for(Notification.model_validate(body()), alerts) == "C_CRIT"
    paying = body(receiver="payments")
    assert channel_for(Notification.model_validate(paying), alerts) == "C_PAY"
    calm = body(commonLabels={"severity": "info"})
    assert channel_for(Notification.model_validate(calm), alerts) == "C_DEFAULT"


def test_no_route_and_no_default_is_unroutable() -> None:
    with pytest.raises(UnroutableError, match="OPSBOT_ALERTS_CHANNEL"):
        channel_for(Notification.model_validate(body()), AlertsSettings())


def test_route_keys_must_name_what_they_match() -> None:
    with pytest.raises(ValidationError, match="receiver=NAME"):
        AlertsSettings(routes={"payments": "C1"})


def test_a_triage_that_never_finished_does_not_hold_back_the_next() -> None:
    """``triaged_at`` is written when a triage is done: a thread whose triage crashed (opened,
    never triaged) is triaged by the next notification, not told to wait the interval."""
    from datetime import UTC, datetime, timedelta

    from bot.store import Incident
    from bot.work.triage import _plan

    n = Notification.model_validate(body())
    opened = Incident(group_key=n.group_key, receiver="platform", title="t", channel="C1",
                      thread_ts="1.0", key_hash="h", status="firing")  # fmt: skip
    assert _plan(n, None, 3600) == "open"
    assert _plan(n, opened, 3600) == "repeat+triage"  # the triage never finished
    opened.triaged_at = datetime.now(UTC) - timedelta(minutes=5)
    assert _plan(n, opened, 3600) == "repeat"  # done 5 minutes ago: wait the interval
    assert _plan(n, opened, 60) == "repeat+triage"
    resolved = Notification.model_validate(body(status="resolved"))
    assert _plan(resolved, opened, 3600) == "resolve"
    assert _plan(resolved, None, 3600) == "skip"
