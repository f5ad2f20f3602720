"""The HTTP server: Slack's request URL (``/slack/events``), Alertmanager's webhook
(``/alertmanager``), ``/livez``, ``/readyz`` and ``/metrics``.

The port opens at once; the agent warms up in the background (``/readyz`` says when it
is done). Every Slack request is checked (``bot.http.guard``) before Bolt or any parser
sees it. On shutdown (SIGTERM) intake stops, running jobs get the grace period and the
rest stay queued for the next start or another replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.alertmanager.webhook import receive
from bot.http.guard import Rejected, check_slack_request, log_rejection
from bot.http.health import Readiness
from bot.http.router import ModelRouter
from bot.services import Services, build_services
from bot.settings import Settings
from bot.slack.app import build_slack_app
from bot.slack.intake import REPLAY_KEY
from bot.store import Store

log = logging.getLogger(__name__)


def build_web_app(
    settings: Settings,
    store: Store | None = None,
    *,
    services: Services | None = None,
    slack_events: bool = True,
) -> Starlette:
    """The app; ``slack_events=False`` (Socket Mode) leaves ``/slack/events`` out."""
    services = services or build_services(settings, store)
    bolt = build_slack_app(services)
    readiness = Readiness(services)
    router = ModelRouter(services.store.engine)
    secret = (
        settings.slack.signing_secret.get_secret_value() if settings.slack.signing_secret else ""
    )

    async def events(request: Request) -> Response:
        return await slack_request(request, bolt, services, secret)

    async def alertmanager(request: Request) -> Response:
        return await receive(request, services)

    async def livez(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        report = await readiness.report()
        problems = {name: why for name, why in report.items() if why}
        body = {"ok": not problems, "checks": {n: why or "ok" for n, why in report.items()}}
        return JSONResponse(body, status_code=503 if problems else 200)

    async def metrics_endpoint(_: Request) -> Response:
        await asyncio.to_thread(_queue_gauges, services)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            await services.stop()
            await router.close()

    routes = [
        Route("/alertmanager", alertmanager, methods=["POST"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/healthz", livez, methods=["GET"]),  # the earlier name of /livez
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        # each model and environment's stable OpenAI-compatible address (the local target)
        Route("/models/{model}/{env}/v1/{path:path}", router.handle, methods=["GET", "POST"]),
    ]
    if slack_events:
        routes.insert(0, Route("/slack/events", events, methods=["POST"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.bolt = bolt
    return app


async def slack_request(
    request: Request, bolt: AsyncApp, services: Services, secret: str
) -> Response:
    """Check the signature, then let Bolt route the request to intake. (An exact replay
    carries the same trigger or event id, so intake records its job once.)"""
    try:
        checked = await check_slack_request(request, secret)
    except Rejected as exc:
        log_rejection(request, exc.reason, exc.status)
        metrics.SLACK_REQUESTS.labels("other", "rejected").inc()
        return PlainTextResponse(exc.reason, status_code=exc.status)
    try:
        bolt_request = to_async_bolt_request(
            request, checked.body, {REPLAY_KEY: checked.replay_key}
        )
        return to_starlette_response(await bolt.async_dispatch(bolt_request))
    except Exception as exc:  # signed but unreadable: the sender gets a 400, never a 500
        log_rejection(request, f"unreadable signed request ({type(exc).__name__})", 400)
        metrics.SLACK_REQUESTS.labels("other", "invalid").inc()
        return PlainTextResponse("malformed request", status_code=400)


def _queue_gauges(services: Services) -> None:
    """The shared queue's depth and oldest waiting job, read at scrape time."""
    try:
        depth = services.queue.depth()
    except Exception:
        log.warning("could not read the queue for /metrics", exc_info=True)
        return
    for queue in ("answers", "triage"):
        for state in ("queued", "running"):
            count, _ = depth.get((queue, state), (0, 0.0))
            metrics.QUEUE_DEPTH.labels(queue, state).set(count)
        metrics.QUEUE_OLDEST_AGE.labels(queue).set(depth.get((queue, "queued"), (0, 0.0))[1])
