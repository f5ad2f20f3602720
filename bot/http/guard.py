"""Slack requests are checked before anything reads them.

The signature is computed over the raw bytes (whatever their encoding or content type),
the timestamp must be digits within five minutes, and the body is bounded. A request that
fails gets 401 (400 for one that is too large or malformed) and one bounded log line that
never quotes the body. A signed request seen before (same timestamp and signature) is an
exact replay: it is answered 200 and not run again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from starlette.requests import Request

log = logging.getLogger(__name__)
#: Slack's own window for a request's timestamp.
MAX_AGE_S = 300
#: Largest body taken at /slack/events (Slack's payloads are far smaller).
MAX_BODY_BYTES = 1_000_000


@dataclass(frozen=True)
class Checked:
    """A request that passed: its raw body and a key naming it (for replays)."""

    body: bytes
    replay_key: str


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def signature_for(secret: str, timestamp: bytes, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def check_slack_request(request: Request, secret: str, now: float | None = None) -> Checked:
    """The request's body when its signature is Slack's; raises Rejected otherwise."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise Rejected(401, "unsigned request")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Rejected(401, "malformed timestamp")
    if abs((now or time.time()) - int(timestamp)) > MAX_AGE_S:
        raise Rejected(401, "stale timestamp")
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        raise Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
    wanted = signature_for(secret, timestamp.encode(), body)
    if not hmac.compare_digest(wanted.encode(), signature.encode(errors="replace")):
        raise Rejected(401, "bad signature")
    key = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()[:60]
    return Checked(body=body, replay_key=f"req:{key}")


def log_rejection(request: Request, reason: str, status: int) -> None:
    """One line, bounded; never the body, never a header value."""
    client = request.client.host if request.client else "-"
    size = request.headers.get("content-length", "?")[:12]
    log.info(
        "refused %s %s from %s (%d, %s bytes): %s",
        request.method, request.url.path[:100], client, status, size, reason,
    )  # fmt: skip
