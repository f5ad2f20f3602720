"""The HTTP app before its workers start: Slack requests are taken (recorded), the
webhook says it is starting, readiness says why not."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette

from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from bot.work.queue import QUEUED

SECRET = "unit-secret"


def app_settings(tmp_path: Path, sample_index: Path, api_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        index={"dir": sample_index},  # type: ignore[arg-type]
        slack={
            "bot_token": "xoxb-unit",
            "signing_secret": SECRET,  # type: ignore[arg-type]
            "api_url": api_url,
        },  # fmt: skip
        alerts={"channel": "C0ALERTS"},  # type: ignore[arg-type]
    )


async def test_while_starting_commands_are_recorded_and_the_webhook_says_503(
    tmp_path: Path, sample_index: Path
) -> None:
    with SlackStandIn() as standin:
        await _while_starting(build_web_app(app_settings(tmp_path, sample_index, standin.base_url)))


async def _while_starting(app: Starlette) -> None:  # no lifespan: the workers never start
    transport = httpx.ASGITransport(app=app)
    sender = SignedSender("http://bot/slack/events", SECRET)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        body = "command=%2Fops&text=ask+why&user_id=U1&channel_id=C1&trigger_id=T9"
        response = await client.post("/slack/events", content=body,
                                     headers=sender.signed_headers(body))  # fmt: skip
        assert response.status_code == 200
        hook = await client.post("/alertmanager", json={
            "version": "4", "groupKey": "g", "status": "firing", "receiver": "r",
            "alerts": [{"status": "firing", "labels": {"alertname": "X"}}],
        })  # fmt: skip
        assert hook.status_code == 503 and "starting" in hook.json()["error"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "starting" in ready.json()["checks"]["agent"]
        assert (await client.get("/livez")).status_code == 200
    jobs = app.state.services.queue.jobs()
    assert [(j.kind, j.state, j.payload["text"]) for j in jobs] == [
        ("slack_command", QUEUED, "why")
    ]
