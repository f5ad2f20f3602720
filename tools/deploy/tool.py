"""The deploy and rollback tools. Both change what serves a model, so both are write tools:
the agent's graph pauses on them (``interrupt()``) until the approval flow, after checking
who may approve, resumes it with the decision. Run after an approval, a tool hands its
request to the bot's deploy service."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from tools.base import ToolContext, ToolError, ToolResult, register

ENV_ALIASES = {"prod": "production", "production": "production", "stg": "staging",
               "staging": "staging", "stage": "staging", "dev": "dev", "test": "test"}  # fmt: skip
_MODEL = r"(?:the\s+)?(?P<model>[A-Za-z0-9][\w.-]*)"
_ENV = r"(?:\s+(?:in|on|to)\s+(?P<env>[A-Za-z]+))?"
DEPLOY = re.compile(
    rf"^\s*(?:please\s+)?(?:roll(?:\s+out)?|deploy|ship|promote|push|upgrade|move)\s+{_MODEL}"
    rf"\s+(?:to\s+)?(?:version\s+)?(?P<version>v?\d[\w.-]*){_ENV}\s*[.!?]*\s*$",
    re.I,
)
ROLLBACK = re.compile(rf"^\s*(?:please\s+)?roll\s*-?\s*back\s+{_MODEL}{_ENV}\s*[.!?]*\s*$", re.I)


def env_name(word: str | None) -> str | None:
    return ENV_ALIASES.get(word.lower(), word.lower()) if word else None


def deploy_intent(question: str) -> dict[str, Any] | None:
    """ "roll the summarizer to v3 in staging" → {"model", "version", "env"}."""
    if ROLLBACK.match(question):
        return None
    match = DEPLOY.match(question)
    if match is None:
        return None
    args = {"model": match["model"], "version": match["version"]}
    return {**args, "env": env_name(match["env"])} if match["env"] else args


def rollback_intent(question: str) -> dict[str, Any] | None:
    """ "roll back the summarizer in prod" → {"model", "env"}."""
    match = ROLLBACK.match(question)
    if match is None:
        return None
    return {"model": match["model"], **({"env": env_name(match["env"])} if match["env"] else {})}


class DeployInput(BaseModel):
    model: str = Field(description="Registered model name, e.g. summarizer.")
    version: str = Field(description="Registered version to serve, e.g. v3.")
    env: str | None = Field(None, description="Environment (staging, production…).")
    request_id: int | None = Field(
        None, description="Set by the approval flow; never by a planner."
    )


class RollbackInput(BaseModel):
    model: str = Field(description="Registered model name.")
    env: str | None = Field(None, description="Environment (staging, production…).")
    request_id: int | None = Field(
        None, description="Set by the approval flow; never by a planner."
    )


def _hand_over(ctx: ToolContext, name: str, request_id: int | None) -> ToolResult:
    if ctx.deploys is None or request_id is None:
        raise ToolError(f"{name} runs only through an approved deploy request")
    message = ctx.deploys.execute(request_id)
    return ToolResult(tool=name, status="ok", message=message)


@register(
    name="deploy_model",
    description="Ask to deploy a registered model version to an environment. Creates a deploy "
    "request that authorised people approve in Slack; nothing changes before that.",
    args_schema=DeployInput,
    status_text="preparing a deploy request…",
    read_only=False,
    intent=deploy_intent,
)
def deploy_model(args: DeployInput, ctx: ToolContext) -> ToolResult:
    return _hand_over(ctx, "deploy_model", args.request_id)


@register(
    name="rollback_model",
    description="Ask to roll a model in an environment back to its last good version. Needs an "
    "approval like a deploy.",
    args_schema=RollbackInput,
    status_text="preparing a rollback request…",
    read_only=False,
    intent=rollback_intent,
)
def rollback_model(args: RollbackInput, ctx: ToolContext) -> ToolResult:
    return _hand_over(ctx, "rollback_model", args.request_id)
