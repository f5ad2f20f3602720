"""``POST /alertmanager``: Alertmanager's webhook receiver.

The request is checked (bearer token when one is set, size, JSON, the version 4 shape, a
channel to post in), recorded as a job in the database and only then answered 202; a bad
one gets a 4xx with the reason. While the bot is starting it answers 503 (Alertmanager
retries). Triage workers take the job (``bot.work.triage``).
"""

from __future__ import annotations

import hmac
import json
import logging
import time

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import metrics
from bot.alertmanager.payload import Notification
from bot.alertmanager.routing import UnroutableError, channel_for
from bot.errors import first_error
from bot.http.guard import read_body
from bot.services import Services
from bot.settings import WebhookSettings
from bot.store import key_hash
from bot.work.queue import TRIAGE, JobBase

log = logging.getLogger(__name__)


def refuse(status: int, reason: str) -> Response:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def authorised(request: Request, webhook: WebhookSettings) -> bool:
    if webhook.token is None:
        return True
    given = request.headers.get("authorization", "")
    wanted = f"Bearer {webhook.token.get_secret_value()}"
    return hmac.compare_digest(given.encode(), wanted.encode())


async def receive(request: Request, services: Services) -> Response:
    started = time.monotonic()
    response, status = await _receive(request, services)
    metrics.ALERT_NOTIFICATIONS.labels(status, _outcome(response.status_code)).inc()
    if response.status_code == 202:
        metrics.ACK_LATENCY.labels("alertmanager").observe(time.monotonic() - started)
    else:
        log.info("webhook refused (%d): %s", response.status_code, _reason(response))
    return response


async def _receive(request: Request, services: Services) -> tuple[Response, str]:
    webhook: WebhookSettings = services.settings.webhook
    if not authorised(request, webhook):
        return refuse(401, "missing or wrong bearer token"), "unknown"
    body = await read_body(request, webhook.max_body_bytes)
    if body is None:
        return refuse(413, f"body larger than {webhook.max_body_bytes} bytes"), "unknown"
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return refuse(400, f"body is not JSON: {exc}"), "unknown"
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        reason = f"not an Alertmanager version 4 notification: {first_error(exc)}"
        return refuse(422, reason), "unknown"
    try:
        channel = channel_for(notification, services.settings.alerts)
    except UnroutableError as exc:
        return refuse(422, str(exc)), notification.status
    if not services.ready:
        return refuse(503, "the bot is starting; Alertmanager will retry"), notification.status
    job = JobBase(
        queue=TRIAGE,
        kind="alert",
        serial_key=f"alert:{key_hash(notification.group_key)[:40]}",
        payload={
            "notification": notification.model_dump(mode="json", by_alias=True),
            "channel": channel,
        },
    )
    await services.enqueue(job)
    return JSONResponse({"ok": True, "channel": channel}, status_code=202), notification.status


def _outcome(status: int) -> str:
    return {202: "accepted", 503: "starting"}.get(status, "rejected")


def _reason(response: Response) -> str:
    """The refusal's reason, bounded and on one line (it may quote the body)."""
    text = bytes(response.body).decode(errors="replace")
    return text[:300].replace("\n", " ").replace("\r", " ")
