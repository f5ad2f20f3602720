"""Putting results in Slack, once per job: every message a job posts is recorded in its
progress as soon as Slack returns its ts, so a retried job edits that message instead of
posting a second one, and skips the pages and files it already delivered.

A failed upload is reported in the thread; it never replaces an answer already shown.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.answer import Answer
from bot.slack import render

log = logging.getLogger(__name__)
#: The metadata event type of every message the bot posts (Slack's message metadata).
METADATA_EVENT = "opsbot_post"


class Progress(Protocol):
    """Where a delivery records what it did: a job's attempt (``bot.work.workers.JobRun``)."""

    progress: dict[str, Any]

    @property
    def id(self) -> int: ...

    async def record(self, **progress: Any) -> None: ...


class Delivery:
    """A job's messages in one Slack thread; ``prefix`` keeps the progress keys of two
    deliveries of one job apart (an alert's header and its triage)."""

    def __init__(
        self, client: AsyncWebClient, run: Progress, channel: str, thread_ts: str | None,
        prefix: str = "",
    ) -> None:  # fmt: skip
        self.client, self.run = client, run
        self.channel, self.thread_ts, self.prefix = channel, thread_ts, prefix

    def done(self, step: str) -> Any:
        return self.run.progress.get(self.prefix + step)

    async def mark(self, step: str, value: Any = True) -> None:
        await self.run.record(**{self.prefix + step: value})

    async def post_once(self, step: str, text: str, blocks: list[Block] | None = None) -> str:
        """Post a message in the thread unless this job already did (returns its ts).

        The message carries the job and step in its metadata, and the intent to post is
        recorded first: if the process died between Slack's answer and the record, the
        retry finds the message by its metadata instead of posting it again."""
        if ts := self.done(step):
            return str(ts)
        tag = f"{self.run.id}:{self.prefix}{step}"
        if since := self.done(step + ":intent"):
            if (found := await self._find(tag, float(since))) is not None:
                await self.mark(step, found)
                return found
        else:
            await self.mark(step + ":intent", f"{time.time() - 60:.6f}")
        kwargs: dict[str, Any] = {
            "channel": self.channel,
            "text": text,
            "metadata": {"event_type": METADATA_EVENT, "event_payload": {"post": tag}},
        }
        if self.thread_ts:
            kwargs["thread_ts"] = self.thread_ts
        if blocks is not None:
            kwargs["blocks"] = render.as_dicts(blocks)
        response = await self.client.chat_postMessage(**kwargs)
        ts = str(response["ts"])
        await self.mark(step, ts)
        return ts

    async def _find(self, tag: str, since: float) -> str | None:
        """The ts of the message this job posted under ``tag``, if Slack has it."""
        try:
            if self.thread_ts:
                page = await self.client.conversations_replies(
                    channel=self.channel, ts=self.thread_ts, include_all_metadata=True, limit=200
                )
            else:
                page = await self.client.conversations_history(
                    channel=self.channel, oldest=f"{since:.6f}", include_all_metadata=True,
                    limit=200,
                )  # fmt: skip
        except SlackApiError as exc:
            log.warning("could not look for an earlier post: %s", exc.response.get("error"))
            return None
        for message in page.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("post") == tag:
                return str(message["ts"])
        return None

    async def update(self, ts: str, text: str, blocks: list[Block]) -> None:
        await self.client.chat_update(
            channel=self.channel, ts=ts, text=text, blocks=render.as_dicts(blocks)
        )

    async def status(self, ts: str, text: str) -> None:
        """Best effort: a status that cannot be shown never stops the work."""
        try:
            await self.update(ts, text, render.status_blocks(text))
        except SlackApiError as exc:
            log.warning("status update failed: %s", exc.response.get("error"))

    async def answer(self, status_ts: str, answer: Answer) -> None:
        """Replace the status message by the answer; overflow pages and files follow."""
        assert self.thread_ts is not None
        pages = render.paginate(render.answer_blocks(answer))
        if not self.done("answer_shown"):
            await self.update(status_ts, answer.headline, pages[0])
            await self.mark("answer_shown")
        for number, page in enumerate(pages[1:], 1):
            await self.post_once(f"page{number}", answer.headline, page)
        for result in answer.results:
            if result.report:  # the whole evidence, as a file in the thread
                await self.upload_once(
                    f"upload:{result.tool}-report", f"{result.tool} report",
                    content=result.report.encode(), filename=f"{result.tool}-report.md",
                )  # fmt: skip
            for image in result.images:  # charts
                path = Path(image)
                if path.is_file():
                    await self.upload_once(
                        f"upload:{path.name}", f"{result.tool} chart",
                        file=str(path), filename=path.name,
                    )  # fmt: skip

    async def upload_once(self, step: str, title: str, **file: Any) -> None:
        if self.done(step):
            return
        try:
            await self.client.files_upload_v2(
                channel=self.channel, thread_ts=self.thread_ts, title=title, **file
            )
        except Exception as exc:  # the answer stays; the thread hears what is missing
            log.warning("upload of %s failed: %s", file.get("filename"), type(exc).__name__)
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            await self.post_once(
                f"{step}:failed",
                f"I could not attach {file.get('filename')} ({error or type(exc).__name__}); "
                "the answer above is complete without it.",
            )
        await self.mark(step)
