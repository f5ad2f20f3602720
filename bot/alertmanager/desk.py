"""The triage desk: one Slack thread per alert group (Alertmanager's ``groupKey``).

- A firing group with no open thread gets a new thread in its channel, and a triage.
- Repeated notifications of the same group go to the same thread; they start a second
  triage only once ``OPSBOT_ALERTS_TRIAGE_INTERVAL`` has passed since the last one.
- A resolved notification updates the thread's first message (resolved, how long it
  lasted) and says so in the thread.

Notifications are handled off the request path, one at a time per group.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alertmanager.payload import Notification
from bot.settings import AlertsSettings
from bot.slack import render
from bot.slack.listeners import Services, answer_in_thread
from bot.store import Incident, IncidentBase

log = logging.getLogger(__name__)
USER = "alertmanager"


def aware(moment: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def triage_args(notification: Notification) -> dict[str, Any]:
    """The alert_triage arguments for a group: its oldest firing alert."""
    alerts = notification.firing or notification.alerts
    first = min(alerts, key=lambda a: a.starts_at or datetime.max.replace(tzinfo=UTC))
    return {
        "alertname": first.labels.get("alertname", "alert"),
        "labels": first.labels,
        "annotations": {**notification.common_annotations, **first.annotations},
        "starts_at": first.starts_at.isoformat() if first.starts_at else None,
        "generator_url": first.generator_url or None,
    }


class TriageDesk:
    def __init__(self, services: Services, client: AsyncWebClient, alerts: AlertsSettings):
        self.services = services
        self.client = client
        self.alerts = alerts
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()

    def accept(self, notification: Notification, channel: str) -> None:
        """Handle a notification in the background (the webhook answers at once)."""
        task = asyncio.create_task(self.handle(notification, channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the notifications being handled (on shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def handle(self, notification: Notification, channel: str) -> None:
        try:
            async with self._locks[notification.group_key]:
                await self._handle(notification, channel)
        except Exception:  # a notification that fails never takes the server down
            log.exception("handling the notification of %s failed", notification.title)

    async def _handle(self, n: Notification, channel: str) -> None:
        store = self.services.store
        await asyncio.to_thread(
            store.audit, source="alertmanager", user=n.receiver, action=f"webhook {n.status}",
            text=n.title, channel=channel,
        )  # fmt: skip
        incident = await asyncio.to_thread(store.incident, group_key=n.group_key)
        if n.status == "resolved":
            if incident is not None and incident.status == "firing":
                await self.resolve(incident, n)
            return
        if incident is None or incident.status == "resolved":
            incident = await self.open(n, channel)
            await self.triage(incident, n)
            return
        assert incident.id is not None
        incident = await asyncio.to_thread(
            store.update_incident, incident.id, notifications=incident.notifications + 1
        )
        await self.show_header(incident, n)
        last = aware(incident.triaged_at)
        due = last is None or (datetime.now(UTC) - last).total_seconds() >= (
            self.alerts.triage_interval
        )
        if due:
            await self.triage(incident, n)
        else:
            await self.client.chat_postMessage(
                channel=incident.channel,
                thread_ts=incident.thread_ts,
                text=f"Still firing: {len(n.firing)} alert(s) (notification "
                f"{incident.notifications}). Triaged at {last:%H:%M} UTC; the next triage "
                "waits for OPSBOT_ALERTS_TRIAGE_INTERVAL.",
            )

    async def open(self, n: Notification, channel: str) -> Incident:
        blocks = render.incident_blocks(n.title, "firing", n.severity, _summary(n), n.started(),
                                        None, len(n.firing))  # fmt: skip
        message = await self.client.chat_postMessage(
            channel=channel, text=f"FIRING: {n.title}", blocks=render.as_dicts(blocks)
        )
        return await asyncio.to_thread(
            self.services.store.open_incident,
            IncidentBase(
                group_key=n.group_key,
                receiver=n.receiver,
                title=n.title[:512],
                channel=message["channel"],
                thread_ts=message["ts"],
            ),
        )

    async def show_header(self, incident: Incident, n: Notification) -> None:
        resolved = aware(incident.resolved_at)
        blocks = render.incident_blocks(
            n.title, incident.status, n.severity, _summary(n), n.started(), resolved,
            len(n.firing),
        )  # fmt: skip
        try:
            await self.client.chat_update(
                channel=incident.channel,
                ts=incident.thread_ts,
                text=f"{incident.status.upper()}: {n.title}",
                blocks=render.as_dicts(blocks),
            )
        except SlackApiError as exc:
            log.warning("could not update %s: %s", incident.title, exc.response.get("error"))

    async def triage(self, incident: Incident, n: Notification) -> None:
        assert incident.id is not None
        await asyncio.to_thread(
            self.services.store.update_incident, incident.id, triaged_at=datetime.now(UTC)
        )
        args = triage_args(n)
        question = f"Triage {args['alertname']}: {_summary(n) or n.title}"
        await answer_in_thread(
            self.services,
            self.client,
            incident.channel,
            incident.thread_ts,
            question,
            USER,
            tool="alert_triage",
            tool_args=args,
            source="alertmanager",
        )

    async def resolve(self, incident: Incident, n: Notification) -> None:
        assert incident.id is not None
        now = datetime.now(UTC)
        incident = await asyncio.to_thread(
            self.services.store.update_incident, incident.id, status="resolved", resolved_at=now
        )
        await self.show_header(incident, n)
        started = n.started() or aware(incident.opened_at) or now
        ended = max((a.ends_at for a in n.alerts if a.ends_at), default=now)
        await self.client.chat_postMessage(
            channel=incident.channel,
            thread_ts=incident.thread_ts,
            text=f"Resolved after {render.duration_text(ended - started)}.",
        )


def _summary(n: Notification) -> str:
    notes = n.common_annotations
    if not notes.get("summary") and n.alerts:
        notes = {**n.alerts[0].annotations, **notes}
    return notes.get("summary") or notes.get("description") or notes.get("message") or ""
