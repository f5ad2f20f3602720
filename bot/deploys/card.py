"""The approval card of a deploy request: what will change, who asked, who approved, and
Approve / Reject buttons while it is pending (updated in place as it moves)."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.db import as_utc
from bot.deploys.requests import PENDING, VERIFYING, DeployApproval, DeployRequest
from bot.slack.render import escape

APPROVE, REJECT = "deploy_approve", "deploy_reject"
#: On a verification that waits for a person (inconclusive; failed with rollback=ask).
PROMOTE, ROLLBACK = "deploy_promote", "deploy_rollback"
BUTTONS = (APPROVE, REJECT, PROMOTE, ROLLBACK)
STATE_TEXT = {
    "pending": "waiting for approval",
    "approved": "approved",
    "running": "deploying…",
    "verifying": "verifying…",
    "verifying:inconclusive": "verification inconclusive: promote or roll back?",
    "verifying:failed": "verification failed: roll back?",
    "succeeded": "deployed",
    "failed": "failed",
    "rolled_back": "rolled back",
    "rejected": "rejected",
    "expired": "expired",
    "cancelled": "cancelled",
}


def _when(moment: datetime | None) -> str:
    moment = as_utc(moment)
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


def _state(request: DeployRequest) -> str:
    key = f"{request.state}:{request.verdict}" if request.verdict else request.state
    return STATE_TEXT.get(key, request.state)


def card_text(request: DeployRequest) -> str:
    verb = "Roll back" if request.action == "rollback" else "Deploy"
    return (
        f"{verb} {request.model} {request.from_version or '(nothing live)'} → {request.version} "
        f"in {request.env}: {_state(request)}"
    )


def card_blocks(
    request: DeployRequest, approvals: list[DeployApproval], required: int, note: str = ""
) -> list[Block]:
    plan = request.plan
    verb = "Rollback" if request.action == "rollback" else "Deploy"
    changes = plan.get("param_changes") or {}
    change_text = (
        "\n".join(f"• `{k}`: {escape(str(a))} → {escape(str(b))}" for k, (a, b) in changes.items())
        or "none"
    )
    fields = [
        f"*Model*\n{escape(request.model)}",
        f"*Environment*\n{escape(request.env)}",
        f"*Live → requested*\n{escape(request.from_version or '(nothing live)')} → "
        f"*{escape(request.version)}*",
        f"*Target*\n{escape(str(plan.get('target', '—')))}",
        f"*Artifact*\n`{escape(str(plan.get('uri', '—')))}`",
        f"*Digest*\n`{escape(str(plan.get('sha256') or 'not a local file'))[:80]}`",
    ]
    blocks: list[Block] = [
        HeaderBlock(text=f"{verb} request #{request.id}: {_state(request)}"[:150]),
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields]),
        SectionBlock(
            text=MarkdownTextObject(text=f"*Serving parameters that change*\n{change_text}")
        ),
        SectionBlock(
            text=MarkdownTextObject(
                text="*Checks after the switch*\n"
                + ("\n".join(f"• {escape(c)}" for c in plan.get("checks", [])) or "health only")
            )
        ),
    ]
    who = ", ".join(f"<@{a.user}>" for a in approvals) or "none yet"
    context = [
        f"Requested by <@{request.requested_by}> · approvals {len(approvals)}/{required}: {who}",
        f"expires {_when(request.expires_at)}" if request.state == PENDING else
        f"decided {_when(request.decided_at)}",
        f"plan `{request.plan_hash[:12]}`",
    ]  # fmt: skip
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=t) for t in context]))
    if note:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=escape(note)[:2900])))
    if request.state == PENDING:
        value = f"{request.id}:{request.plan_hash[:16]}"  # a click approves the plan it saw
        blocks.append(
            ActionsBlock(
                block_id=f"deploy:{request.id}",
                elements=[
                    ButtonElement(text="Approve", action_id=APPROVE, value=value, style="primary"),
                    ButtonElement(text="Reject", action_id=REJECT, value=value, style="danger"),
                ],
            )
        )
    elif request.state == VERIFYING and request.verdict:
        value = f"{request.id}:{request.plan_hash[:16]}"
        buttons = [ButtonElement(text="Roll back", action_id=ROLLBACK, value=value, style="danger")]
        if request.verdict == "inconclusive":
            buttons.insert(0, ButtonElement(text="Promote", action_id=PROMOTE, value=value,
                                            style="primary"))  # fmt: skip
        blocks.append(ActionsBlock(block_id=f"verdict:{request.id}", elements=list(buttons)))
    return blocks
