"""Slack intake: validate, record a job, then ack. Nothing else happens on the request path.

The job is in the database before Slack hears the ack, so an acknowledged request is
answered even if the process dies a moment later. Handlers take only the arguments they
name (Bolt injects them by name).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot import metrics
from bot.deploys.card import BUTTONS
from bot.errors import first_error
from bot.services import Services
from bot.slack import render
from bot.slack.commands import ASKS, EVAL_USAGE, LOOKUPS, metrics_args, parse_eval_run
from bot.store import conversation_id
from bot.work.jobs import click_job, eval_job
from bot.work.queue import ANSWERS, JobBase
from tools.base import ToolError
from tools.metrics.query import DEFAULT_RANGE

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+>")
#: What each subcommand says when it is given nothing (those absent need no text).
NEEDS_TEXT = {
    "ask": "Ask me something, e.g. `/ops ask what should I check when pods crash-loop?`",
    "rca": "Paste log lines after `/ops rca`, or attach a log file in a thread and mention me "
    "there.",
    "metrics": "Give a PromQL expression and optionally a range and step, e.g. "
    "`/ops metrics sum(rate(http_requests_total[5m])) 1h 30s`.",
    "deploy": "Name a model, a version and optionally an environment, e.g. "
    "`/ops deploy summarizer v3 staging`.",
    "rollback": "Name a model and optionally an environment, e.g. `/ops rollback summarizer prod`.",
    "model": "`/ops model register NAME VERSION URI [key=value …]`",
    "deployments": "`/ops deployments MODEL [ENV]`",
    "cancel": "`/ops cancel REQUEST` (a pending deploy request, by its number)",
}
#: Message subtypes a person's thread reply can have.
PEOPLE_SUBTYPES = (None, "file_share", "thread_broadcast")
#: The Bolt context key of the request's replay key (its timestamp and signature, hashed):
#: the dedup key of a job whose request has no trigger or event id.
REPLAY_KEY = "opsbot_replay_key"
SLACK_ID = r"^[A-Z0-9][A-Z0-9._-]{0,63}$"
TS = r"^\d{1,12}(\.\d{1,9})?$"


class SlashCommand(BaseModel):
    """The fields of a slash command the bot relies on."""

    model_config = ConfigDict(extra="ignore")
    user_id: str = Field(pattern=SLACK_ID)
    channel_id: str = Field(pattern=SLACK_ID)
    text: str = Field("", max_length=40_000)
    trigger_id: str = Field("", max_length=100)  # the dedup key holds it (Slack's are ~40)
    response_url: str = Field("", max_length=2000)


class SlackFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field("", max_length=64)
    name: str = Field("", max_length=1000)
    size: int = Field(0, ge=0)
    url_private: str = Field("", max_length=4000)
    url_private_download: str = Field("", max_length=4000)


class MessageEvent(BaseModel):
    """An app_mention or a message event, as far as the bot reads it."""

    model_config = ConfigDict(extra="ignore")
    channel: str = Field(pattern=SLACK_ID)
    user: str = Field("", max_length=64)
    text: str = Field("", max_length=40_000)
    ts: str = Field(pattern=TS)
    thread_ts: str | None = Field(None, pattern=TS)
    files: list[SlackFile] = Field(default_factory=list, max_length=20)

    @field_validator("files", mode="before")
    @classmethod
    def _file_objects(cls, value: Any) -> list[Any]:
        """Only file objects are files; anything else there is not Slack's and is ignored."""
        return [f for f in value if isinstance(f, dict)] if isinstance(value, list) else []


class _Id(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=SLACK_ID)


class _Action(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action_id: str = Field(max_length=64)
    value: str = Field(pattern=r"^\d{1,12}(:[0-9a-f]{1,64})?$")
    action_ts: str = Field(pattern=TS)


class _Container(BaseModel):
    model_config = ConfigDict(extra="ignore")
    thread_ts: str | None = Field(None, pattern=TS)


class Click(BaseModel):
    """A button click (block_actions) as far as the approval flow reads it."""

    model_config = ConfigDict(extra="ignore")
    user: _Id
    channel: _Id
    container: _Container = Field(default_factory=_Container)
    actions: list[_Action] = Field(min_length=1, max_length=1)


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
    if sub in ("deploy", "rollback"):
        from tools.deploy.tool import env_name

        words = text.split()
        names = ("model", "version", "env") if sub == "deploy" else ("model", "env")
        args: dict[str, Any] = dict(zip(names, words, strict=False))
        if "env" in args:
            args["env"] = env_name(args["env"])
        return args
    return None


def shown_request(sub: str, text: str, args: dict[str, Any] | None) -> str:
    """What the thread's first message says was asked."""
    if sub == "rca":
        return f"a log RCA of {len(text.splitlines())} line(s)"
    if sub == "metrics" and args:
        return f"`{args['promql']}` over {args.get('range', DEFAULT_RANGE)}"
    if sub == "alerts":
        return f"what {text + ' alerts are' if text else 'is'} firing"
    if sub in ("deploy", "rollback"):
        return f"{sub} {text}"
    return text


def register_intake(app: AsyncApp, services: Services) -> None:
    async def _eval_command(
        ack: AsyncAck, cmd: SlashCommand, rest: str, context: AsyncBoltContext
    ) -> None:
        """``/ops eval run SUITE [split]`` is a durable eval job; ``report`` and ``list``
        are lookups; anything else gets the usage."""
        from evals.cases import CaseFileError
        from evals.suite import load_suite

        dedup = f"trigger:{cmd.trigger_id}" if cmd.trigger_id else _replay(context)
        word = rest.split()[0] if rest.split() else ""
        if word == "run":
            try:
                suite, split, model = parse_eval_run(rest)
                load_suite(suite)
            except (ToolError, CaseFileError) as exc:
                await ack(text=str(exc))
                return
            payload = {"suite": suite, "split": split, "user": cmd.user_id,
                       "channel": cmd.channel_id, "model": model}  # fmt: skip
            await services.enqueue(eval_job(payload, dedup))
            await ack(text=f"Running the {suite} suite ({split}); its progress and report "
                           "follow in the channel.")  # fmt: skip
        elif word in ("report", "list", "schedule", "schedules", "unschedule"):
            job = JobBase(
                queue=ANSWERS, kind="slack_lookup", serial_key=f"lookup:{uuid.uuid4().hex}",
                dedup_key=dedup, payload={"user": cmd.user_id, "channel": cmd.channel_id,
                                          "sub": "eval", "text": rest,
                                          "response_url": cmd.response_url},
            )  # fmt: skip
            await services.enqueue(job)
            await ack()
        else:
            await ack(text=f"Usage: {EVAL_USAGE}")
        metrics.SLACK_REQUESTS.labels("command", "accepted").inc()

    async def on_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        started = time.monotonic()
        try:
            cmd = SlashCommand.model_validate(command)
        except ValidationError as exc:
            metrics.SLACK_REQUESTS.labels("command", "invalid").inc()
            await ack(text=f"This command could not be read ({first_error(exc)}).")
            return
        sub, rest = parse_command(cmd.text)
        if sub == "help":
            await ack(blocks=render.as_dicts(render.help_blocks()), text="opsbot help")
        elif sub in NEEDS_TEXT and not rest:
            await ack(text=NEEDS_TEXT[sub])
        elif sub == "deploy" and len(rest.split()) < 2:
            await ack(text=NEEDS_TEXT["deploy"])
        elif sub == "eval":
            await _eval_command(ack, cmd, rest, context)
            return
        elif sub in LOOKUPS:
            job = JobBase(
                queue=ANSWERS, kind="slack_lookup", serial_key=f"lookup:{uuid.uuid4().hex}",
                dedup_key=f"trigger:{cmd.trigger_id}" if cmd.trigger_id else _replay(context),
                payload={"user": cmd.user_id, "channel": cmd.channel_id, "sub": sub,
                         "text": rest, "response_url": cmd.response_url},
            )  # fmt: skip
            await services.enqueue(job)
            await ack()
            metrics.SLACK_REQUESTS.labels("command", "accepted").inc()
            return
        elif sub not in ASKS:
            await ack(text=render.usage_text(sub))
        else:
            args = command_args(sub, rest)
            job = JobBase(
                queue=ANSWERS,
                kind="slack_command",
                serial_key=f"command:{uuid.uuid4().hex}",  # its thread does not exist yet
                dedup_key=f"trigger:{cmd.trigger_id}" if cmd.trigger_id else _replay(context),
                payload={
                    "user": cmd.user_id, "channel": cmd.channel_id, "sub": sub, "text": rest,
                    "tool_args": args, "shown": shown_request(sub, rest, args),
                    "response_url": cmd.response_url,
                },
            )  # fmt: skip
            fresh = await services.enqueue(job)
            await ack()
            metrics.SLACK_REQUESTS.labels("command", "accepted" if fresh else "duplicate").inc()
            metrics.ACK_LATENCY.labels("command").observe(time.monotonic() - started)
            return
        metrics.SLACK_REQUESTS.labels("command", "answered_in_ack").inc()

    app.command("/ops")(on_command)

    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        """Approve / Reject on a deploy card: recorded, then acked; the worker decides."""
        started = time.monotonic()
        try:
            click = Click.model_validate(body)
        except ValidationError as exc:
            metrics.SLACK_REQUESTS.labels("action", "invalid").inc()
            log.info("dropping a click that could not be read: %s", first_error(exc)[:200])
            await ack()
            return
        action = click.actions[0]
        request_id, _, plan = action.value.partition(":")
        payload = {
            "request_id": int(request_id), "plan": plan, "action_id": action.action_id,
            "action_ts": action.action_ts, "user": click.user.id, "channel": click.channel.id,
        }  # fmt: skip
        fresh = await services.enqueue(click_job(payload, click.container.thread_ts))
        await ack()
        metrics.SLACK_REQUESTS.labels("action", "accepted" if fresh else "duplicate").inc()
        metrics.ACK_LATENCY.labels("action").observe(time.monotonic() - started)

    for action_id in BUTTONS:
        app.action(action_id)(on_click)

    async def take(
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        event: MessageEvent,
        action: str,
        started: float,
    ) -> None:
        thread_ts = event.thread_ts or event.ts
        event_id = str(body.get("event_id") or "")[:100]
        job = JobBase(
            queue=ANSWERS,
            kind="slack_message",
            serial_key=conversation_id(event.channel, thread_ts),
            dedup_key=f"event:{event_id}" if event_id else _replay(context),
            payload={
                "channel": event.channel, "thread_ts": thread_ts, "user": event.user,
                "text": MENTION.sub("", event.text).strip(), "action": action,
                "files": [f.model_dump() for f in event.files],
            },
        )  # fmt: skip
        fresh = await services.enqueue(job)
        await ack()
        metrics.SLACK_REQUESTS.labels("event", "accepted" if fresh else "duplicate").inc()
        metrics.ACK_LATENCY.labels("event").observe(time.monotonic() - started)

    async def on_mention(
        ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        started = time.monotonic()
        parsed = _event(event)
        if parsed is None:
            await ack()
            return
        await take(ack, body, context, parsed, "mention", started)

    app.event("app_mention")(on_mention)

    async def on_message(
        ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A reply in a thread the bot takes part in continues that conversation."""
        started = time.monotonic()
        text = event.get("text")
        mentioned = context.bot_user_id and f"<@{context.bot_user_id}>" in str(text or "")
        if (
            not event.get("thread_ts")
            or event.get("bot_id")
            or event.get("subtype") not in PEOPLE_SUBTYPES
            or mentioned  # the app_mention listener answers it
        ):
            await ack()
            return
        parsed = _event(event)
        if parsed is None or not (parsed.text.strip() or parsed.files):
            await ack()
            return
        assert parsed.thread_ts is not None
        known = await services.on_intake(
            services.store.has_conversation, channel=parsed.channel, thread_ts=parsed.thread_ts
        )
        if not known:
            await ack()
            return
        await take(ack, body, context, parsed, "thread reply", started)

    app.event("message")(on_message)


def _replay(context: AsyncBoltContext) -> str | None:
    key = context.get(REPLAY_KEY)
    return str(key) if key else None


def _event(event: dict[str, Any]) -> MessageEvent | None:
    """The event as the bot reads it; None (acked and dropped, with a log line) when it
    lacks what an answer needs or carries what Slack never sends."""
    try:
        return MessageEvent.model_validate(event)
    except ValidationError as exc:
        metrics.SLACK_REQUESTS.labels("event", "invalid").inc()
        log.info("dropping an event that could not be read: %s", first_error(exc)[:200])
        return None


__all__ = ["ASKS", "register_intake", "parse_command"]
