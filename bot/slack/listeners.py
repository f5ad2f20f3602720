"""Slack listeners: ack at once, then work in lazy listeners off the request path.

Handlers take only the arguments they name (Bolt injects them by name).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.answer import Answer
from bot.agent.service import Agent, PendingApproval
from bot.slack import render
from bot.store import Store

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+>")


@dataclass
class Services:
    """What listeners use; the agent is set when the server starts (its checkpointer is async)."""

    store: Store
    agent: Agent | None = None
    max_concurrent_answers: int = 4
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
        elif sub == "ask" and not rest:
            await ack(
                text="Ask me something, e.g. `/ops ask what should I check when pods crash-loop?`"
            )
        elif sub == "ask":
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
        if sub != "ask" or not question:
            return
        try:
            starter = await client.chat_postMessage(
                channel=channel,
                text=f"<@{user}> asked: {question}",
                blocks=render.as_dicts(render.question_blocks(user, question)),
            )
        except SlackApiError as exc:
            await respond(
                text=f"I could not post in this channel ({exc.response.get('error')}). "
                "Invite me with `/invite @opsbot` and ask again.",
                response_type="ephemeral",
            )
            return
        await answer_in_thread(services, client, channel, starter["ts"], question, user)

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
        await answer_in_thread(services, client, channel, thread_ts, question, user)

    app.event("app_mention")(ack=ack_event, lazy=[on_mention])

    async def on_message(
        event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        """A reply in a thread the bot takes part in continues that conversation."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or event.get("subtype") or event.get("bot_id"):
            return
        text = event.get("text", "")
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text:
            return  # the app_mention listener answers it
        channel = event["channel"]
        known = await asyncio.to_thread(
            services.store.has_conversation, channel=channel, thread_ts=thread_ts
        )
        if not known or not text.strip():
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
        await answer_in_thread(services, client, channel, thread_ts, text.strip(), user)

    app.event("message")(ack=ack_event, lazy=[on_message])


async def answer_in_thread(
    services: Services,
    client: AsyncWebClient,
    channel: str,
    thread_ts: str,
    question: str,
    user: str,
) -> None:
    """Post a status message in the thread, run the agent, replace the status by the answer."""
    thread_id = await asyncio.to_thread(
        services.store.start_conversation, channel=channel, thread_ts=thread_ts, user=user
    )
    status = await client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        text="thinking…",
        blocks=render.as_dicts(render.status_blocks("thinking…")),
    )

    async def on_status(text: str) -> None:
        """Best effort: a status that cannot be shown never stops the answer."""
        try:
            await client.chat_update(
                channel=channel,
                ts=status["ts"],
                text=text,
                blocks=render.as_dicts(render.status_blocks(text)),
            )
        except SlackApiError as exc:
            log.warning("status update failed in %s: %s", thread_id, exc.response.get("error"))

    try:
        assert services.agent is not None, "the agent starts with the server"
        if services.slots.locked():
            await on_status("queued behind other questions…")
        async with services.slots:
            result = await services.agent.ask(
                thread_id, question, user=user, source="slack", on_status=on_status
            )
        if isinstance(result, PendingApproval):
            blocks = render.pending_blocks(result.summary, result.requested_by)
            await client.chat_update(
                channel=channel,
                ts=status["ts"],
                text="waiting for an approval",
                blocks=render.as_dicts(blocks),
            )
        else:
            await post_answer(client, channel, thread_ts, status["ts"], result)
    except Exception as exc:  # the bot answers and stays up, whatever broke
        log.exception("answering failed in %s", thread_id)
        text = f"Something went wrong while answering ({type(exc).__name__}). Please try again."
        try:
            await client.chat_update(
                channel=channel,
                ts=status["ts"],
                text=text,
                blocks=render.as_dicts(render.error_blocks(text)),
            )
        except SlackApiError:
            log.exception("could not report the failure in %s", thread_id)


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


__all__ = ["Services", "answer_in_thread", "parse_command", "register_listeners"]
