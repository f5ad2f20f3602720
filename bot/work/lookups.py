"""Registry and history commands: `/ops models`, `/ops model register …`,
`/ops deployments MODEL [ENV]`, `/ops audit [N]`, answered to the person who asked
(ephemeral, through the command's response_url)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.db import as_utc
from bot.work.workers import Handler, JobRun
from tools.base import ToolError
from tools.deploy.registry import parse_params

if TYPE_CHECKING:
    from bot.services import Services

USAGE = {
    "model": "`/ops model register NAME VERSION URI [key=value …]`",
    "deployments": "`/ops deployments MODEL [ENV]`",
    "cancel": "`/ops cancel REQUEST`",
}


class LookupJobs:
    def __init__(self, services: Services) -> None:
        self.services = services

    def handlers(self) -> dict[str, Handler]:
        return {"slack_lookup": _Lookup(self.services)}


class _Lookup:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def run(self, run: JobRun) -> None:
        p = run.job.payload
        if run.progress.get("answered"):
            return
        try:
            if p["sub"] == "cancel":
                text = await self.cancel(p["text"], p["user"])
            elif p["sub"] == "eval":
                from bot.work.evals import command

                text = await command(self.services, p["text"], p["user"], p["channel"])
            else:
                text = await asyncio.to_thread(self.answer, p["sub"], p["text"], p["user"])
        except ToolError as exc:
            text = str(exc)
        if p.get("response_url"):
            await AsyncWebhookClient(p["response_url"]).send(text=text, response_type="ephemeral")
        else:
            await self.services.client.chat_postEphemeral(
                channel=p["channel"], user=p["user"], text=text
            )
        await run.record(answered=True)

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        return None

    async def cancel(self, text: str, user: str) -> str:
        words = text.split()
        if len(words) != 1 or not words[0].lstrip("#").isdigit():
            raise ToolError(f"Usage: {USAGE['cancel']}")
        deploys = self.services.deploys
        assert deploys is not None
        return await deploys.cancel(int(words[0].lstrip("#")), user)

    def answer(self, sub: str, text: str, user: str) -> str:
        deploys = self.services.deploys
        assert deploys is not None
        words = text.split()
        if sub == "models":
            return models_text(deploys.registry.versions(), deploys.registry.live())
        if sub == "model":
            if len(words) < 4 or words[0] != "register":
                raise ToolError(f"Usage: {USAGE['model']}")
            params = parse_params(words[4:])
            row = deploys.registry.register(words[1], words[2], words[3], params=params, by=user)
            self.services.store.audit(source="deploy", user=user, action="model register",
                                      text=f"{row.model} {row.version} {row.uri}")  # fmt: skip
            digest = f", sha256 {row.sha256[:12]}…" if row.sha256 else ""
            return f"Registered {row.model} {row.version} ({row.uri}{digest})."
        if sub == "deployments":
            if not words:
                raise ToolError(f"Usage: {USAGE['deployments']}")
            history = deploys.requests.history(words[0], words[1] if len(words) > 1 else None)
            return "\n".join(history_line(r) for r in history) or f"No deploys of {words[0]} yet."
        limit = int(words[0]) if words and words[0].isdigit() else 20
        records = [r for r in self.services.store.audit_log(limit=500) if r.source == "deploy"]
        return (
            "\n".join(
                f"{as_utc(r.at):%Y-%m-%d %H:%M} <@{r.user}> {r.action}: {r.text}"
                for r in records[:limit]
            )
            or "No deploy actions yet."
        )


def models_text(versions: list[Any], live: list[Any]) -> str:
    if not versions:
        return "No models are registered. Use `/ops model register NAME VERSION URI`."
    where: dict[tuple[str, str], list[str]] = {}
    for row in live:
        where.setdefault((row.model, row.version), []).append(row.env)
    lines = []
    for v in versions:
        envs = where.get((v.model, v.version))
        live_text = f" — live in {', '.join(envs)}" if envs else ""
        lines.append(f"*{v.model}* {v.version}: `{v.uri}`{live_text}")
    return "\n".join(lines)


def history_line(r: Any) -> str:
    return (
        f"#{r.id} {as_utc(r.created_at):%Y-%m-%d %H:%M} {r.action} {r.model} "
        f"{r.from_version or '—'} → {r.version} in {r.env}: {r.state} "
        f"(asked by <@{r.requested_by}>)"
    )
