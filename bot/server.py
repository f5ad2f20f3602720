"""The HTTP server: Slack's request URL (`/slack/events`), Alertmanager's webhook
(`/alertmanager`) and `/healthz`.

Slash commands, events and interactivity all arrive at `/slack/events`; Bolt checks each
request's signature and answers 401 to a request that is unsigned or stale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.agent.service import open_agent
from bot.alertmanager.desk import TriageDesk
from bot.alertmanager.webhook import receive
from bot.settings import Settings
from bot.slack.app import build_slack_app, services_for
from bot.store import Store


def build_web_app(settings: Settings, store: Store | None = None) -> Starlette:
    services = services_for(settings, store)
    slack_app = build_slack_app(settings, services)
    handler = AsyncSlackRequestHandler(slack_app)
    desks: list[TriageDesk] = []

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def alertmanager(request: Request) -> Response:
        desk = desks[0] if desks and services.agent is not None else None
        return await receive(request, desk, settings.webhook, settings.alerts)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": services.agent is not None})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with open_agent(settings) as agent:
            services.agent = agent
            desk = TriageDesk(services, slack_app.client, settings.alerts)
            desks.append(desk)
            yield
            await desk.drain()
            desks.clear()
            services.agent = None

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/alertmanager", alertmanager, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
