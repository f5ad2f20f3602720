"""Answer jobs: a slash command or a message in a thread, answered by the agent.

Each step is recorded in the job's progress (see ``bot.slack.delivery``), and the agent's
turn is named after the job, so a job retried after a crash continues where it stopped:
no second thread, no second status message, no second run of a finished turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot import metrics
from bot.agent.service import PendingApproval
from bot.slack import render
from bot.slack.delivery import Delivery
from bot.slack.files import AttachmentError, download, thread_folder
from bot.work.workers import Handler, JobRun

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
#: Slack's errors that mean the bot may not post in a channel (asking again will not help).
CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
FAILED_TEXT = "Something went wrong while answering ({}). Please try again."


class AnswerJobs:
    def __init__(self, services: Services) -> None:
        self.services = services

    def handlers(self) -> dict[str, Handler]:
        return {"slack_command": _Command(self), "slack_message": _Message(self)}

    async def audit_once(self, run: JobRun, **record: Any) -> None:
        if not run.progress.get("audited"):
            await asyncio.to_thread(self.services.store.audit, **record)
            await run.record(audited=True)

    async def answer(
        self,
        run: JobRun,
        delivery: Delivery,
        question: str,
        user: str,
        *,
        tool: str | None = None,
        tool_args: dict[str, Any] | None = None,
        files: list[dict[str, Any]] | None = None,
        source: str = "slack",
    ) -> None:
        """Post a status message in the thread, run the agent, replace the status by the
        answer. ``tool`` is a tool a slash command asked for; ``files`` are attached Slack
        files, downloaded first (one that cannot be used is said, the rest goes on)."""
        services = self.services
        assert services.agent is not None and delivery.thread_ts is not None
        channel, thread_ts = delivery.channel, delivery.thread_ts
        thread_id = await asyncio.to_thread(
            services.store.start_conversation, channel=channel, thread_ts=thread_ts, user=user
        )
        status_ts = await delivery.post_once(
            "status_ts", "thinking…", render.status_blocks("thinking…")
        )

        async def on_status(text: str) -> None:
            await delivery.status(status_ts, text)

        started = time.monotonic()
        attachments = await self.fetch_attachments(files or [], channel, thread_ts, on_status)
        result = await services.agent.ask(
            thread_id, question, user=user, source=source, tool=tool, tool_args=tool_args,
            attachments=attachments, on_status=on_status, turn_id=f"job:{run.id}",
        )  # fmt: skip
        if isinstance(result, PendingApproval):
            assert services.deploys is not None
            await services.deploys.open(run, delivery, status_ts, result, thread_id)
            metrics.ANSWERS.labels("pending_approval").inc()
        else:
            await delivery.answer(status_ts, result)
            metrics.ANSWERS.labels("answered").inc()
        metrics.ANSWER_DURATION.observe(time.monotonic() - started)

    async def fetch_attachments(
        self,
        files: list[dict[str, Any]],
        channel: str,
        thread_ts: str,
        on_status: Callable[[str], Awaitable[None]],
    ) -> list[str]:
        """Download attached files; a file that fails is said in the thread."""
        uploads = self.services.settings.uploads_dir
        if not files:
            return []
        await on_status(f"downloading {len(files)} attachment(s)…")
        token = self.services.client.token or ""
        saved: list[str] = []
        for file in files:
            try:
                saved.append(
                    await download(
                        file, token=token, uploads_dir=uploads,
                        folder=thread_folder(channel, thread_ts),
                    )
                )  # fmt: skip
            except AttachmentError as exc:
                await on_status(str(exc))
        return saved

    async def report_failure(self, run: JobRun, delivery: Delivery, error: BaseException) -> None:
        """The last attempt failed: say so on the status message, unless the answer is
        already shown (then the thread has what it asked for)."""
        metrics.ANSWERS.labels("error").inc()
        if delivery.done("answer_shown") or delivery.thread_ts is None:
            return
        text = FAILED_TEXT.format(type(error).__name__)
        status_ts = delivery.done("status_ts")
        if status_ts:
            await delivery.update(str(status_ts), text, render.error_blocks(text))
        else:
            await delivery.post_once("error_ts", text, render.error_blocks(text))


class _Command:
    """``/ops ask|rca|metrics|alerts …``: a message in the channel, answered in its thread."""

    def __init__(self, jobs: AnswerJobs) -> None:
        self.jobs = jobs

    def _delivery(self, run: JobRun) -> Delivery:
        p = run.job.payload
        return Delivery(
            self.jobs.services.client, run, p["channel"], run.progress.get("starter_ts")
        )

    async def run(self, run: JobRun) -> None:
        from bot.slack.commands import ASKS

        p = run.job.payload
        await self.jobs.audit_once(
            run, source="slack", user=p["user"], action=f"/ops {p['sub']}", text=p["text"],
            channel=p["channel"],
        )  # fmt: skip
        delivery = self._delivery(run)
        shown = p["shown"]
        try:
            starter = await delivery.post_once(
                "starter_ts", f"<@{p['user']}> asked: {shown}",
                render.question_blocks(p["user"], shown),
            )  # fmt: skip
        except SlackApiError as exc:
            if exc.response.get("error") not in CANNOT_POST:
                raise  # Slack failing: the job is retried
            await self._cannot_post(p, exc)
            return
        delivery.thread_ts = starter
        await self.jobs.answer(
            run, delivery, p["text"] or shown, p["user"], tool=ASKS[p["sub"]],
            tool_args=p.get("tool_args"),
        )  # fmt: skip

    async def _cannot_post(self, payload: dict[str, Any], exc: SlackApiError) -> None:
        """The bot may not post in the channel: tell the person through response_url."""
        url = payload.get("response_url")
        error = exc.response.get("error")
        if not url:
            log.warning("could not post in %s: %s", payload["channel"], error)
            return
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        await AsyncWebhookClient(url).send(
            text=f"I could not post in this channel ({error}). Invite me with "
            "`/invite @opsbot` and ask again.",
            response_type="ephemeral",
        )

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        await self.jobs.report_failure(run, self._delivery(run), error)


class _Message:
    """A mention, or a reply in a thread the bot takes part in."""

    def __init__(self, jobs: AnswerJobs) -> None:
        self.jobs = jobs

    def _delivery(self, run: JobRun) -> Delivery:
        p = run.job.payload
        return Delivery(self.jobs.services.client, run, p["channel"], p["thread_ts"])

    async def run(self, run: JobRun) -> None:
        p = run.job.payload
        await self.jobs.audit_once(
            run, source="slack", user=p["user"], action=p["action"], text=p["text"],
            channel=p["channel"], thread_ts=p["thread_ts"],
        )  # fmt: skip
        delivery = self._delivery(run)
        if not p["text"] and not p["files"]:
            await delivery.post_once(
                "hint_ts", "Ask me something, e.g. _what should I check when pods crash-loop?_"
            )
            return
        question = p["text"] or "what do these logs show?"
        await self.jobs.answer(run, delivery, question, p["user"], files=p["files"])

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        await self.jobs.report_failure(run, self._delivery(run), error)
