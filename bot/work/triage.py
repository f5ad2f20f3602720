"""Alert jobs: one Slack thread per alert group (Alertmanager's ``groupKey``).

- A firing group with no open thread gets a new thread in its channel, and a triage.
- Repeated notifications of the same group go to the same thread; they start a second
  triage only once ``OPSBOT_ALERTS_TRIAGE_INTERVAL`` has passed since the last one
  finished (``triaged_at`` is written when a triage is done, never before).
- A resolved notification updates the thread's first message (resolved, how long it
  lasted) and says so in the thread.

Jobs of one group run one at a time across replicas (their serial key), and what a job
decided and posted is in its progress, so a retried job opens no second thread.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.alertmanager.payload import Notification
from bot.db import as_utc
from bot.slack import render
from bot.slack.delivery import Delivery
from bot.store import Incident, IncidentBase
from bot.work.workers import Handler, JobRun

if TYPE_CHECKING:
    from bot.services import Services
    from bot.work.answering import AnswerJobs

log = logging.getLogger(__name__)
USER = "alertmanager"


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


def summary(n: Notification) -> str:
    notes = n.common_annotations
    if not notes.get("summary") and n.alerts:
        notes = {**n.alerts[0].annotations, **notes}
    return notes.get("summary") or notes.get("description") or notes.get("message") or ""


class TriageJobs:
    def __init__(self, services: Services, answers: AnswerJobs) -> None:
        self.services, self.answers = services, answers

    def handlers(self) -> dict[str, Handler]:
        return {"alert": _Alert(self)}


class _Alert:
    def __init__(self, jobs: TriageJobs) -> None:
        self.jobs = jobs
        self.store = jobs.services.store
        self.client = jobs.services.client

    async def run(self, run: JobRun) -> None:
        n = Notification.model_validate(run.job.payload["notification"])
        channel = run.job.payload["channel"]
        if not run.progress.get("audited"):
            await asyncio.to_thread(
                self.store.audit, source="alertmanager", user=n.receiver[:64],
                action=f"webhook {n.status}", text=n.title, channel=channel,
            )  # fmt: skip
            await run.record(audited=True)
        incident = await asyncio.to_thread(self.store.incident, group_key=n.group_key)
        plan = run.progress.get("plan")
        if plan is None:  # decided once: a retry follows the same branch
            plan = _plan(n, incident, self.jobs.services.settings.alerts.triage_interval)
            await run.record(plan=plan)
        if plan == "open":
            incident = await self.open(run, n, channel, incident)
            await self.triage(run, incident, n)
        elif plan in ("repeat", "repeat+triage"):
            assert incident is not None
            incident = await self.count(run, incident)
            await self.show_header(incident, n)
            if plan == "repeat+triage":
                await self.triage(run, incident, n)
            else:
                last = as_utc(incident.triaged_at)
                await Delivery(self.client, run, incident.channel, incident.thread_ts).post_once(
                    "note_ts",
                    f"Still firing: {len(n.firing)} alert(s) (notification "
                    f"{incident.notifications}). Triaged at {last:%H:%M} UTC; the next "
                    "triage waits for OPSBOT_ALERTS_TRIAGE_INTERVAL.",
                )
        elif plan == "resolve":
            assert incident is not None
            await self.resolve(run, incident, n)

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        incident = run.progress.get("thread")
        if incident:  # the thread exists: the triage's status says what happened
            delivery = Delivery(self.client, run, incident[0], incident[1], prefix="triage.")
            await self.jobs.answers.report_failure(run, delivery, error)

    async def open(
        self, run: JobRun, n: Notification, channel: str, incident: Incident | None
    ) -> Incident:
        if incident is not None and incident.thread_ts == run.progress.get("header_ts"):
            return incident  # opened by an earlier attempt of this job
        blocks = render.incident_blocks(n.title, "firing", n.severity, summary(n), n.started(),
                                        None, len(n.firing))  # fmt: skip
        header = Delivery(self.client, run, channel, None)
        ts = await header.post_once("header_ts", f"FIRING: {n.title}", blocks)
        return await asyncio.to_thread(
            self.store.open_incident,
            IncidentBase(
                group_key=n.group_key[:1024], receiver=n.receiver[:256], title=n.title[:512],
                channel=channel, thread_ts=ts,
            ),
            group_key=n.group_key,
        )  # fmt: skip

    async def count(self, run: JobRun, incident: Incident) -> Incident:
        assert incident.id is not None
        if run.progress.get("counted"):
            return incident
        incident = await asyncio.to_thread(
            self.store.update_incident, incident.id, notifications=incident.notifications + 1
        )
        await run.record(counted=True)
        return incident

    async def show_header(self, incident: Incident, n: Notification) -> None:
        resolved = as_utc(incident.resolved_at)
        blocks = render.incident_blocks(
            n.title, incident.status, n.severity, summary(n), n.started(), resolved,
            len(n.firing),
        )  # fmt: skip
        try:
            await self.client.chat_update(
                channel=incident.channel, ts=incident.thread_ts,
                text=f"{incident.status.upper()}: {n.title}", blocks=render.as_dicts(blocks),
            )  # fmt: skip
        except SlackApiError as exc:
            log.warning("could not update %s: %s", incident.title, exc.response.get("error"))

    async def triage(self, run: JobRun, incident: Incident, n: Notification) -> None:
        assert incident.id is not None
        await run.record(thread=[incident.channel, incident.thread_ts])
        args = triage_args(n)
        question = f"Triage {args['alertname']}: {summary(n) or n.title}"
        delivery = Delivery(self.client, run, incident.channel, incident.thread_ts, "triage.")
        await self.jobs.answers.answer(
            run, delivery, question, USER, tool="alert_triage", tool_args=args,
            source="alertmanager",
        )  # fmt: skip
        await asyncio.to_thread(
            self.store.update_incident, incident.id, triaged_at=datetime.now(UTC)
        )

    async def resolve(self, run: JobRun, incident: Incident, n: Notification) -> None:
        assert incident.id is not None
        now = datetime.now(UTC)
        if incident.status != "resolved":
            incident = await asyncio.to_thread(
                self.store.update_incident, incident.id, status="resolved", resolved_at=now
            )
        await self.show_header(incident, n)
        started = n.started() or as_utc(incident.opened_at) or now
        ended = max((a.ends_at for a in n.alerts if a.ends_at), default=now)
        await Delivery(self.client, run, incident.channel, incident.thread_ts).post_once(
            "resolved_ts", f"Resolved after {render.duration_text(ended - started)}."
        )


def _plan(n: Notification, incident: Incident | None, interval: float) -> str:
    """What a notification does: open a thread, note a repeat (with a triage when one is
    due), resolve the thread, or nothing (a resolution of a group with no open thread)."""
    if n.status == "resolved":
        return "resolve" if incident is not None and incident.status == "firing" else "skip"
    if incident is None or incident.status == "resolved":
        return "open"
    last = as_utc(incident.triaged_at)
    due = last is None or (datetime.now(UTC) - last).total_seconds() >= interval
    return "repeat+triage" if due else "repeat"
