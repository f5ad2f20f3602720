"""The HTTP server: Slack's request URL (`/slack/events`) and `/healthz`.

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
from bot.settings import Settings
from bot.slack.app import build_slack_app, services_for
from bot.store import Store


def build_web_app(settings: Settings, store: Store | None = None) -> Starlette:
    services = services_for(settings, store)
    handler = AsyncSlackRequestHandler(build_slack_app(settings, services))

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": services.agent is not None})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with open_agent(settings) as agent:
            services.agent = agent
            yield
            services.agent = None

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
