"""Slack listeners: ack at once, then work in lazy listeners off the request path.

Handlers take only the arguments they name (Bolt injects them by name).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.answer import Answer
from bot.agent.service import Agent, PendingApproval
from bot.slack import render
from bot.slack.commands import metrics_args
from bot.slack.files import AttachmentError, download, thread_folder
from bot.store import Store
from tools.metrics.query import DEFAULT_RANGE

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+>")
#: Subcommands that start a conversation, and the tool each asks for (None: planned).
ASKS: dict[str, str | None] = {
    "ask": None,
    "rca": "log_rca",
    "metrics": "prometheus_query",
    "alerts": "firing_alerts",
}
#: What each subcommand says when it is given nothing (those absent need no text).
NEEDS_TEXT = {
    "ask": "Ask me something, e.g. `/ops ask what should I check when pods crash-loop?`",
    "rca": "Paste log lines after `/ops rca`, or attach a log file in a thread and mention me "
    "there.",
    "metrics": "Give a PromQL expression and optionally a range and step, e.g. "
    "`/ops metrics sum(rate(http_requests_total[5m])) 1h 30s`.",
}
#: Message subtypes a person's thread reply can have.
PEOPLE_SUBTYPES = (None, "file_share", "thread_broadcast")


@dataclass
class Services:
    """What listeners use; the agent is set when the server starts (its checkpointer is async)."""

    store: Store
    agent: Agent | None = None
    max_concurrent_answers: int = 4
    bot_token: str = ""
    uploads_dir: Path | None = None
    _slots: asyncio.Semaphore | None = None

    @property
    def slots(self) -> asyncio.Semaphore:
        """Bounds the answers in progress (created in the server's event loop)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent_answers)
        return self._slots


def parse_command(text: str) -> tuple[str, str]:
    """`/ops ask why?` → ("ask", "why?"); empty text → ("help", "")."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "help", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def command_args(sub: str, text: str) -> dict[str, Any] | None:
    """A subcommand's tool arguments when they are parsed here (None: the text is the query)."""
    if sub == "metrics":
        return metrics_args(text)
    if sub == "alerts":
        return {"severity": text} if text else {}
    return None


def shown_request(sub: str, text: str, args: dict[str, Any] | None) -> str:
    """What the thread's first message says was asked."""
    if sub == "rca":
        return f"a log RCA of {len(text.splitlines())} line(s)"
    if sub == "metrics" and args:
        return f"`{args['promql']}` over {args.get('range', DEFAULT_RANGE)}"
    if sub == "alerts":
        return f"what {text + ' alerts are' if text else 'is'} firing"
    return text


def register_listeners(app: AsyncApp, services: Services) -> None:
    async def skip_retries(body: dict[str, Any], next: Any) -> BoltResponse | None:  # noqa: A002
        """An Events API delivery of an event already taken (a retry) is acked and dropped."""
        event_id = body.get("event_id")
        handled = (body.get("event") or {}).get("type") in ("app_mention", "message")
        if (
            event_id
            and handled
            and not await asyncio.to_thread(services.store.first_sight, event_id=event_id)
        ):
            log.info("dropping repeated delivery of %s", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    app.middleware(skip_retries)

    async def ack_ops(ack: AsyncAck, command: dict[str, Any]) -> None:
        sub, rest = parse_command(command.get("text", ""))
        if sub == "help":
            await ack(blocks=render.as_dicts(render.help_blocks()), text="opsbot help")
        elif sub in NEEDS_TEXT and not rest:
            await ack(text=NEEDS_TEXT[sub])
        elif sub in ASKS:
            await ack()
        else:
            await ack(text=render.usage_text(sub))

    async def run_ops(command: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        sub, question = parse_command(command.get("text", ""))
        user, channel = command["user_id"], command["channel_id"]
        await asyncio.to_thread(
            services.store.audit,
            source="slack",
            user=user,
            action=f"/ops {sub}",
            text=question,
            channel=channel,
        )
        if sub not in ASKS or (sub in NEEDS_TEXT and not question):
            return
        tool_args = command_args(sub, question)
        shown = shown_request(sub, question, tool_args)
        try:
            starter = await client.chat_postMessage(
                channel=channel,
                text=f"<@{user}> asked: {shown}",
                blocks=render.as_dicts(render.question_blocks(user, shown)),
            )
        except SlackApiError as exc:
            await respond(
                text=f"I could not post in this channel ({exc.response.get('error')}). "
                "Invite me with `/invite @opsbot` and ask again.",
                response_type="ephemeral",
            )
            return
        await answer_in_thread(
            services,
            client,
            channel,
            starter["ts"],
            question or shown,
            user,
            tool=ASKS[sub],
            tool_args=tool_args,
        )

    app.command("/ops")(ack=ack_ops, lazy=[run_ops])

    async def ack_event(ack: AsyncAck) -> None:
        await ack()

    async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        channel = event["channel"]
        thread_ts = event.get("thread_ts") or event["ts"]
        question = MENTION.sub("", event.get("text", "")).strip()
        user = event.get("user", "")
        await asyncio.to_thread(
            services.store.audit,
            source="slack",
            user=user,
            action="mention",
            text=question,
            channel=channel,
            thread_ts=thread_ts,
        )
        if not question:
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text="Ask me something, e.g. _what should I check when pods crash-loop?_",
            )
            return
        await answer_in_thread(
            services, client, channel, thread_ts, question, user, files=event.get("files") or []
        )

    app.event("app_mention")(ack=ack_event, lazy=[on_mention])

    async def on_message(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """A reply in a thread the bot takes part in continues that conversation."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or event.get("bot_id") or event.get("subtype") not in PEOPLE_SUBTYPES:
            return
        text = event.get("text", "")
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text:
            return  # the app_mention listener answers it
        channel = event["channel"]
        known = await asyncio.to_thread(
            services.store.has_conversation, channel=channel, thread_ts=thread_ts
        )
        files = event.get("files") or []
        if not known or not (text.strip() or files):
            return
        user = event.get("user", "")
        await asyncio.to_thread(
            services.store.audit,
            source="slack",
            user=user,
            action="thread reply",
            text=text,
            channel=channel,
            thread_ts=thread_ts,
        )
        question = text.strip() or "what do these logs show?"
        await answer_in_thread(services, client, channel, thread_ts, question, user, files=files)

    app.event("message")(ack=ack_event, lazy=[on_message])


async def answer_in_thread(
    services: Services,
    client: AsyncWebClient,
    channel: str,
    thread_ts: str,
    question: str,
    user: str,
    *,
    tool: str | None = None,
    tool_args: dict[str, Any] | None = None,
    files: list[dict[str, Any]] | None = None,
    source: str = "slack",
) -> None:
    """Post a status message in the thread, run the agent, replace the status by the answer.

    ``tool`` names a tool a slash command asked for; ``files`` are attached Slack files,
    downloaded first (a file that cannot be used is reported and the rest goes on).
    """
    thread_id = await asyncio.to_thread(
        services.store.start_conversation, channel=channel, thread_ts=thread_ts, user=user
    )
    status = await client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        text="thinking…",
        blocks=render.as_dicts(render.status_blocks("thinking…")),
    )

    async def show(text: str, blocks: list[Block]) -> None:
        """Replace the status message."""
        await client.chat_update(
            channel=channel, ts=status["ts"], text=text, blocks=render.as_dicts(blocks)
        )

    async def on_status(text: str) -> None:
        """Best effort: a status that cannot be shown never stops the answer."""
        try:
            await show(text, render.status_blocks(text))
        except SlackApiError as exc:
            log.warning("status update failed in %s: %s", thread_id, exc.response.get("error"))

    try:
        assert services.agent is not None, "the agent starts with the server"
        attachments = await fetch_attachments(services, files or [], channel, thread_ts, on_status)
        if services.slots.locked():
            await on_status("queued behind other questions…")
        async with services.slots:
            result = await services.agent.ask(
                thread_id,
                question,
                user=user,
                source=source,
                tool=tool,
                tool_args=tool_args,
                attachments=attachments,
                on_status=on_status,
            )
        if isinstance(result, PendingApproval):
            pending = render.pending_blocks(result.summary, result.requested_by)
            await show("waiting for an approval", pending)
        else:
            await post_answer(client, channel, thread_ts, status["ts"], result)
    except Exception as exc:  # the bot answers and stays up, whatever broke
        log.exception("answering failed in %s", thread_id)
        text = f"Something went wrong while answering ({type(exc).__name__}). Please try again."
        try:
            await show(text, render.error_blocks(text))
        except SlackApiError:
            log.exception("could not report the failure in %s", thread_id)


async def fetch_attachments(
    services: Services,
    files: list[dict[str, Any]],
    channel: str,
    thread_ts: str,
    on_status: Callable[[str], Awaitable[None]],
) -> list[str]:
    """Download attached files; a file that fails is said in the thread, the rest go on."""
    if not files or services.uploads_dir is None:
        return []
    await on_status(f"downloading {len(files)} attachment(s)…")
    saved: list[str] = []
    for file in files:
        try:
            saved.append(
                await download(
                    file,
                    token=services.bot_token,
                    uploads_dir=services.uploads_dir,
                    folder=thread_folder(channel, thread_ts),
                )
            )
        except AttachmentError as exc:
            await on_status(str(exc))
    return saved


async def post_answer(
    client: AsyncWebClient, channel: str, thread_ts: str, status_ts: str, answer: Answer
) -> None:
    """Replace the status message by the answer; overflow goes to further thread messages."""
    pages = render.paginate(render.answer_blocks(answer))
    await client.chat_update(
        channel=channel, ts=status_ts, text=answer.headline, blocks=render.as_dicts(pages[0])
    )
    for page in pages[1:]:
        await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=answer.headline, blocks=render.as_dicts(page)
        )
    for result in answer.results:
        if result.report:  # the whole evidence, as a file in the thread
            await client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=result.report.encode(),
                filename=f"{result.tool}-report.md",
                title=f"{result.tool} report",
            )
        for image in result.images:  # charts
            path = Path(image)
            if path.is_file():
                await client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread_ts,
                    file=str(path),
                    filename=path.name,
                    title=f"{result.tool} chart",
                )


__all__ = ["Services", "answer_in_thread", "parse_command", "register_listeners"]
