"""What is firing: alerts from Alertmanager when one is configured, else from Prometheus,
grouped by alert name, most severe and oldest first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from tools import intents
from tools.base import Evidence, ToolContext, ToolError, ToolResult, register
from tools.metrics.client import alertmanager_alerts
from tools.metrics.durations import format_duration
from tools.metrics.query import prometheus

SEVERITY_ORDER = {"critical": 0, "error": 1, "high": 1, "warning": 2, "info": 3, "none": 4}
#: Labels every alert of a group shares or that say little; not listed per alert.
QUIET_LABELS = {"alertname", "severity", "prometheus", "receive_resolved"}
MAX_INSTANCES = 5


class FiringAlertsInput(BaseModel):
    severity: str | None = Field(None, description="Only this severity (e.g. critical).")


@dataclass
class AlertGroup:
    name: str
    severity: str
    since: datetime
    summary: str
    instances: list[dict[str, str]] = field(default_factory=list)


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def normalise(raw: list[dict[str, Any]], *, alertmanager: bool) -> list[dict[str, Any]]:
    """Firing alerts as {labels, annotations, since}, from either API's shape."""
    out = []
    for alert in raw:
        if alertmanager:
            if (alert.get("status") or {}).get("state", "active") != "active":
                continue
            since = alert.get("startsAt")
        else:
            if alert.get("state") != "firing":
                continue
            since = alert.get("activeAt")
        out.append(
            {
                "labels": dict(alert.get("labels") or {}),
                "annotations": dict(alert.get("annotations") or {}),
                "since": _parse_time(since),
            }
        )
    return out


def group_alerts(alerts: list[dict[str, Any]]) -> list[AlertGroup]:
    groups: dict[tuple[str, str], AlertGroup] = {}
    buckets: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        labels = alert["labels"]
        key = (labels.get("alertname", "unnamed"), labels.get("severity", "none"))
        buckets[key].append(alert)
    for (name, severity), members in buckets.items():
        members.sort(key=lambda a: a["since"])
        notes = members[0]["annotations"]
        groups[(name, severity)] = AlertGroup(
            name=name,
            severity=severity,
            since=members[0]["since"],
            summary=notes.get("summary") or notes.get("description") or notes.get("message", ""),
            instances=[
                {k: v for k, v in a["labels"].items() if k not in QUIET_LABELS} for a in members
            ],
        )
    return sorted(
        groups.values(), key=lambda g: (SEVERITY_ORDER.get(g.severity.lower(), 5), g.since)
    )


def age(since: datetime, now: datetime | None = None) -> str:
    seconds = ((now or datetime.now(UTC)) - since).total_seconds()
    return format_duration(max(seconds, 1))


def group_evidence(group: AlertGroup, source: str) -> Evidence:
    lines = [f"firing for {age(group.since)} (since {group.since:%Y-%m-%d %H:%M} UTC)"]
    if group.summary:
        lines.append(group.summary)
    for labels in group.instances[:MAX_INSTANCES]:
        lines.append("• " + (" ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"))
    if len(group.instances) > MAX_INSTANCES:
        lines.append(f"… and {len(group.instances) - MAX_INSTANCES} more")
    count = f" ×{len(group.instances)}" if len(group.instances) > 1 else ""
    return Evidence(
        kind="alert",
        title=f"{group.name}{count}",
        source=source,
        section=group.severity,
        text="\n".join(lines),
    )


def firing(ctx: ToolContext) -> tuple[list[AlertGroup], str]:
    """The firing alert groups and where they came from."""
    if ctx.alertmanager is not None and ctx.alertmanager.url:
        raw = alertmanager_alerts(ctx.alertmanager)
        return group_alerts(normalise(raw, alertmanager=True)), "Alertmanager"
    if ctx.prometheus is None or not ctx.prometheus.url:
        raise ToolError(
            "neither Alertmanager nor Prometheus is configured; set OPSBOT_ALERTMANAGER_URL "
            "or OPSBOT_PROMETHEUS_URL"
        )
    with prometheus(ctx) as client:
        raw = client.alerts()
    return group_alerts(normalise(raw, alertmanager=False)), "Prometheus"


@register(
    name="firing_alerts",
    description="List the alerts firing now (from Alertmanager or Prometheus), grouped by "
    "alert name, with severity and how long each has been firing.",
    args_schema=FiringAlertsInput,
    status_text="reading firing alerts…",
    keywords=("alerts", "firing", "paging", "pages", "alerting"),
    intent=intents.alerts_of_severity,
    rate_group="prometheus",
    requires=("prometheus|alertmanager",),
)
def firing_alerts(args: FiringAlertsInput, ctx: ToolContext) -> ToolResult:
    groups, source = firing(ctx)
    if args.severity:
        groups = [g for g in groups if g.severity.lower() == args.severity.lower()]
    if not groups:
        which = f" {args.severity}" if args.severity else ""
        return ToolResult(
            tool="firing_alerts", status="no_data", message=f"No{which} alerts are firing."
        )
    total = sum(len(g.instances) for g in groups)
    worst = groups[0]
    return ToolResult(
        tool="firing_alerts",
        status="ok",
        message=f"{total} alert(s) firing in {len(groups)} group(s) ({source}); most severe: "
        f"{worst.name} ({worst.severity}) for {age(worst.since)}",
        evidence=[group_evidence(g, source) for g in groups],
    )
