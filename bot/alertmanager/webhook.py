"""``POST /alertmanager``: Alertmanager's webhook receiver.

The request is checked (bearer token when one is set, size, JSON, the version 4 shape, a
channel to post in) and answered at once; a bad one gets a 4xx with the reason. The work
happens in the triage desk, off the request path.
"""

from __future__ import annotations

import hmac
import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.alertmanager.desk import TriageDesk
from bot.alertmanager.payload import Notification
from bot.alertmanager.routing import UnroutableError, channel_for
from bot.settings import AlertsSettings, WebhookSettings


def refuse(status: int, reason: str) -> Response:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def authorised(request: Request, webhook: WebhookSettings) -> bool:
    if webhook.token is None:
        return True
    given = request.headers.get("authorization", "")
    wanted = f"Bearer {webhook.token.get_secret_value()}"
    return hmac.compare_digest(given.encode(), wanted.encode())


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


async def receive(
    request: Request, desk: TriageDesk | None, webhook: WebhookSettings, alerts: AlertsSettings
) -> Response:
    if not authorised(request, webhook):
        return refuse(401, "missing or wrong bearer token")
    body = await read_body(request, webhook.max_body_bytes)
    if body is None:
        return refuse(413, f"body larger than {webhook.max_body_bytes} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return refuse(400, f"body is not JSON: {exc}")
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        return refuse(422, f"not an Alertmanager version 4 notification: {first_error(exc)}")
    try:
        channel = channel_for(notification, alerts)
    except UnroutableError as exc:
        return refuse(422, str(exc))
    if desk is None:
        return refuse(503, "the bot is starting; Alertmanager will retry")
    desk.accept(notification, channel)
    return JSONResponse({"ok": True, "channel": channel}, status_code=202)
