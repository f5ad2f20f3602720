"""Every Block Kit message the bot sends, built with ``slack_sdk.models.blocks``.

Slack's limits are enforced here: at most 50 blocks a message and 3,000 characters a
section text. Longer answers are split over several messages of the same thread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.agent.answer import Answer
from tools.base import Evidence

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_CONTEXT_ELEMENTS = 10

HELP = [
    ("`/ops help`", "this list"),
    ("`/ops ask <question>`", "answer from the team's runbooks, in a new thread"),
    ("`/ops rca <log lines>`", "root-cause analysis of pasted logs, in a new thread"),
    (
        "`/ops metrics <PromQL> [range] [step]`",
        "run a PromQL query: figures per series and a chart, in a new thread",
    ),
    ("`/ops alerts [severity]`", "what is firing now, grouped, with severity and age"),
    ("`/ops models`", "registered model versions and where each is live"),
    ("`/ops model register NAME VERSION URI [key=value …]`", "record a model version"),
    (
        "`/ops deploy MODEL VERSION [ENV]` / `/ops rollback MODEL [ENV]`",
        "ask for a deploy or rollback: a card that authorised approvers decide",
    ),
    ("`/ops cancel REQUEST`", "withdraw a pending deploy request (its requester or an approver)"),
    ("`/ops deployments MODEL [ENV]` / `/ops audit [N]`", "what was asked, approved and done"),
    (
        "`@opsbot <question>`",
        "start a conversation in a thread; replies there continue it; attach a log file for an RCA",
    ),
]


def escape(text: str) -> str:
    """Slack's three control characters, so `<namespace>` shows and `<!channel>` pings no one."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> str:
    """Markdown to Slack mrkdwn for what runbooks use: bold, links, headings, bullets.

    Text is escaped first; links are the only markup the output adds.
    """
    text = escape(text)
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            out.append("```")
            continue
        if in_code:
            out.append(line)
            continue
        line = re.sub(r"^#{1,6}\s+(.*)$", r"*\1*", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"*\1*", line)
        line = re.sub(r"__(.+?)__", r"*\1*", line)
        line = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", line)
        line = re.sub(r"^(\s*)[-*+]\s+", r"\1• ", line)
        out.append(line)
    return "\n".join(out)


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """Cut text into pieces of at most ``limit`` characters, at line ends where possible,
    closing and reopening a code block that a cut falls inside."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        room = limit - 8  # space for a closing/opening fence
        cut = rest.rfind("\n", 0, room)
        cut = cut if cut > room // 2 else room
        head, rest = rest[:cut], rest[cut:].lstrip("\n")
        if head.count("```") % 2:
            head += "\n```"
            rest = "```\n" + rest
        pieces.append(head)
    pieces.append(rest)
    return [p for p in pieces if p.strip()]


def sections(text: str) -> list[SectionBlock]:
    return [SectionBlock(text=MarkdownTextObject(text=part)) for part in split_text(text)]


def context(*texts: str) -> ContextBlock:
    """A context block; past Slack's 10 elements the rest share the last one."""
    items = list(texts)
    if len(items) > MAX_CONTEXT_ELEMENTS:
        keep = MAX_CONTEXT_ELEMENTS - 1
        items = [*items[:keep], "\n".join(items[keep:])]
    return ContextBlock(elements=[MarkdownTextObject(text=t[:MAX_SECTION_CHARS]) for t in items])


def evidence_blocks(ev: Evidence) -> list[Block]:
    score = f" · score {ev.score:.2f}" if ev.score is not None else ""
    head = f"*[{ev.id}] {escape(ev.where)}*\n`{escape(ev.source)}`{score}"
    return [*sections(head + "\n" + mrkdwn(ev.text))]


def answer_blocks(answer: Answer) -> list[Block]:
    """The whole answer; may exceed one message (see ``paginate``)."""
    blocks: list[Block] = [*sections(f"*{escape(answer.headline)}*")]
    if answer.summary:
        blocks += sections(escape(answer.summary))
    if answer.evidence:
        blocks.append(DividerBlock())
    for ev in answer.evidence:
        blocks += evidence_blocks(ev)
    problems = [
        f"`{r.tool}`: {escape(r.message)}"
        for r in answer.results
        if r.status in ("error", "approval_required") and r.message not in answer.headline
    ]
    notes = [*problems, *(f"_Note: {escape(n)}_" for n in answer.notes)]
    if notes:
        blocks.append(context(*notes))
    return blocks


def paginate(blocks: Sequence[Block], limit: int = MAX_BLOCKS) -> list[list[Block]]:
    """Split blocks into messages of at most ``limit`` blocks."""
    return [list(blocks[i : i + limit]) for i in range(0, len(blocks), limit)] or [[]]


def status_blocks(text: str) -> list[Block]:
    return [context(f":hourglass_flowing_sand: {text}")]


def question_blocks(user: str, question: str) -> list[Block]:
    return [*sections(f"<@{user}> asked: {escape(question)}")]


def help_blocks() -> list[Block]:
    lines = "\n".join(f"{cmd} — {what}" for cmd, what in HELP)
    return [
        HeaderBlock(text="opsbot"),
        *sections(
            "I answer from your team's runbooks, metrics and logs, and cite what I use.\n" + lines
        ),
    ]


def usage_text(subcommand: str) -> str:
    known = ", ".join(cmd for cmd, _ in HELP)
    return f"I don't know `/ops {subcommand}`. Try: {known}."


def error_blocks(message: str) -> list[Block]:
    return [*sections(f":warning: {escape(message)}")]


def pending_blocks(calls: str, requested_by: str) -> list[Block]:
    return [
        *sections(
            f":lock: {escape(calls)} changes things and waits for an approval by someone "
            f"other than <@{requested_by}>."
        )
    ]


def duration_text(delta: timedelta) -> str:
    """``2h 5m``, ``4m 10s``: how long something lasted."""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def incident_blocks(
    title: str,
    status: str,
    severity: str,
    summary: str,
    started: datetime | None,
    resolved: datetime | None,
    firing: int,
) -> list[Block]:
    """The first message of an alert group's thread: what fires, since when; or that it
    resolved and how long it lasted."""
    if status == "resolved":
        head = f":white_check_mark: *RESOLVED* {escape(title)}"
    else:
        head = f":rotating_light: *FIRING* {escape(title)}"
    facts = [f"severity *{escape(severity)}*"] if severity else []
    if started is not None:
        facts.append(f"since {started:%Y-%m-%d %H:%M} UTC")
    if resolved is not None and started is not None:
        facts.append(f"resolved {resolved:%H:%M} UTC, lasted {duration_text(resolved - started)}")
    elif status != "resolved":
        facts.append(f"{firing} alert(s) firing")
    blocks: list[Block] = [*sections(head + ("\n" + escape(summary) if summary else ""))]
    blocks.append(context(" · ".join(facts) or status))
    return blocks


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, object]]:
    return [block.to_dict() for block in blocks]
