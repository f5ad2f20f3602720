"""A local stand-in for Slack: :class:`SlackStandIn` fakes the Web API (pass its ``base_url``
to slack_sdk clients; it records calls and simulates channels, threads and file uploads),
:class:`SignedSender` posts signed slash commands, events and interactions to the bot, and
:func:`serve_forever` runs the stand-in for developers (``python -m bot.slack.standin [PORT]``).
"""

from __future__ import annotations

import contextlib
import copy
import email.parser
import email.policy
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from slack_sdk.signature import SignatureVerifier

_JSON_FIELDS = ("blocks", "attachments", "files", "metadata", "user_auth_blocks")
_FORM = "application/x-www-form-urlencoded"


@dataclass
class RecordedCall:
    """One request received by the stand-in."""

    method: str  # Web API method name, or "files.upload" / "response_url"
    params: dict[str, Any]  # merged query/form/JSON params, JSON-encoded fields decoded
    at: float  # time.monotonic() when received
    headers: dict[str, str]  # request headers, lower-case keys
    content: bytes | None = None  # raw file bytes, for "files.upload"
    path: str = ""  # request path, e.g. "/api/chat.postMessage" or a response_url's path


def _parse_body(raw: bytes, content_type: str) -> tuple[dict[str, Any], bytes | None]:
    """Decode a request body into params, plus the bytes of an uploaded file part if any."""
    ctype = content_type.split(";")[0].strip().lower()
    if not raw:
        return {}, None
    if ctype == "application/json":
        data = json.loads(raw.decode("utf-8"))
        return (data if isinstance(data, dict) else {"_json": data}), None
    if ctype == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
        params: dict[str, Any] = {}
        file_bytes: bytes | None = None
        for part in msg.iter_parts():
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if part.get_filename() is not None:
                file_bytes = data
            else:
                params[str(part.get_param("name", header="content-disposition"))] = data.decode()
        return params, file_bytes
    if ctype == _FORM:
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)), None
    return {}, raw


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


class SlackStandIn:
    """An in-process fake of Slack's Web API for tests and local development."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        team_id: str = "T0TEAM",
        token: str | None = None,
        on_call: Callable[[RecordedCall], None] | None = None,
    ) -> None:
        """``token``: if set, calls must carry it; ``on_call``: told of each recorded call."""
        self.host, self.port, self.token = host, port, token
        self.bot_user_id, self.bot_id, self.team_id = bot_user_id, bot_id, team_id
        self.on_call = on_call
        #: Seconds to wait before answering a Web API method (to catch the bot mid-work).
        self.delays: dict[str, float] = {}
        #: Where apps.connections.open sends a Socket Mode client (a test's WebSocket server).
        self.socket_url: str | None = None
        #: User groups (S…) and their members, for usergroups.users.list.
        self.usergroups: dict[str, list[str]] = {}
        #: Channels by name (conversations.list), and whether the bot is a member of each.
        self.channels: dict[str, tuple[str, bool]] = {"ops": ("C0OPS", True)}
        #: Web API methods made to fail, with the error Slack would give.
        self.failures: dict[str, str] = {}
        self._cond = threading.Condition()
        self._calls: list[RecordedCall] = []
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._uploads: dict[str, dict[str, Any]] = {}  # file_id -> {filename, length, content}
        self._seq = itertools.count(1)
        self._last_ts = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SlackStandIn:
        """Bind the port and serve in a daemon thread."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._handle(self)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass  # recorded calls are the log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Web API base URL, e.g. ``http://127.0.0.1:54321/api/``."""
        return f"{self.root_url}/api/"

    @property
    def calls(self) -> list[RecordedCall]:
        """A copy of all recorded calls, in arrival order."""
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def wait_for(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 10.0,
    ) -> RecordedCall:
        """Block until a call to ``method`` matching ``predicate`` is recorded (or already was)."""

        def find() -> RecordedCall | None:
            calls = (c for c in self._calls if c.method == method)
            matches = (c for c in calls if predicate is None or predicate(c))
            return next(matches, None)

        with self._cond:
            found = self._cond.wait_for(find, timeout=timeout)
            if found is None:
                seen = ", ".join(_describe(c) for c in self._calls) or "none"
                raise TimeoutError(f"no matching {method} call in {timeout}s; calls seen: {seen}")
            return found

    def clear(self, *, messages: bool = False) -> None:
        """Forget recorded calls (and, with ``messages=True``, the message store too)."""
        with self._cond:
            self._calls.clear()
            if messages:
                self._messages.clear()
                self._uploads.clear()

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The simulated messages of a thread (parent first), as copies."""
        with self._cond:
            msgs = self._messages.get(channel, {})
            found = [m for m in msgs.values() if m["ts"] == ts or m.get("thread_ts") == ts]
            return copy.deepcopy(sorted(found, key=lambda m: float(m["ts"])))

    def add_message(
        self, channel: str, text: str, *, user: str = "U0ALICE", thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Put a human's message into the store (e.g. the mention that starts a thread)."""
        with self._cond:
            return dict(self._store(channel, {"text": text, "user": user}, thread_ts, bot=False))

    def add_file(self, name: str, content: bytes, *, user: str = "U0ALICE") -> dict[str, Any]:
        """A file a person attached: the ``files`` entry Slack puts in the event. Downloading
        its ``url_private_download`` needs the bot token, as on Slack."""
        file_id = f"F{next(self._seq):08d}"
        with self._cond:
            self._uploads[file_id] = {"filename": name, "length": len(content), "content": content}
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "user": user,
            "size": len(content),
            "mimetype": "text/plain",
            "filetype": "text",
            "url_private": f"{self.root_url}/files/{file_id}/{name}",
            "url_private_download": f"{self.root_url}/files/{file_id}/download/{name}",
        }

    def response_url(self) -> str:
        """A fresh URL on this server; POSTs to it are recorded as method ``response_url``."""
        return f"{self.root_url}/response/{uuid.uuid4().hex}"

    # -- request handling --------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        params: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        ctype = req.headers.get("Content-Type", "")
        body: dict[str, Any] = {}
        content: bytes | None = raw  # slack_sdk posts upload bytes raw (as form-urlencoded!)
        if not url.path.startswith("/upload/") or ctype.startswith("multipart/"):
            body, content = _parse_body(raw, ctype)
        params.update(body)
        headers = {k.lower(): v for k, v in req.headers.items()}
        status, reply, kind = 200, b"ok", url.path.split("/")[1]
        if delay := self.delays.get(url.path.removeprefix("/api/")):
            time.sleep(delay)
        with self._cond:  # answer and record atomically: a waiter sees the store up to date
            if kind == "api":
                method = url.path[len("/api/") :]
                result = self._api(method, _decode_json_fields(params), headers)
                reply = json.dumps(result).encode()
            elif kind == "upload":
                method, upload = "files.upload", self._uploads.get(url.path[len("/upload/") :])
                if upload is not None:
                    upload["content"] = content or b""
                status = 200 if upload is not None else 404
                reply = f"OK - {len(content or b'')}".encode()
            elif kind == "files":
                method = "files.download"
                upload = self._uploads.get(url.path.split("/")[2])
                authorised = self.token is None or headers.get("authorization") == (
                    f"Bearer {self.token}"
                )
                if upload is None or not authorised:
                    status, reply = (404 if upload is None else 403), b"not found"
                else:
                    reply = upload.get("content") or b""
            else:
                method = "response_url" if kind == "response" else "unknown"
                status, reply = (200, b"ok") if kind == "response" else (404, b"not found")
            call = RecordedCall(method, params, time.monotonic(), headers, content, url.path)
            self._calls.append(call)
            self._cond.notify_all()
        if self.on_call is not None:
            self.on_call(call)
        req.send_response(status)
        ctype_out = {"api": "application/json", "files": "application/octet-stream"}
        req.send_header("Content-Type", ctype_out.get(kind, "text/plain"))
        req.send_header("Content-Length", str(len(reply)))
        req.end_headers()
        req.wfile.write(reply)

    def _api(self, method: str, p: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """Answer one Web API method; called with the lock held."""
        if method in self.failures:
            return {"ok": False, "error": self.failures[method]}
        if method == "apps.connections.open":  # Socket Mode: an app-level token, not the bot's
            if not headers.get("authorization", "").startswith("Bearer xapp-"):
                return {"ok": False, "error": "invalid_auth"}
            if not self.socket_url:
                return {"ok": False, "error": "socket_mode_not_enabled"}
            return {"ok": True, "url": self.socket_url}
        if self.token is not None:
            auth = headers.get("authorization", "")
            if auth != f"Bearer {self.token}" and p.get("token") != self.token:
                return {"ok": False, "error": "invalid_auth"}
        channel = p.get("channel") or p.get("channel_id") or ""
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://opsbot-test.slack.com/",
                "team": "opsbot-test",
                "user": "opsbot",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
            }
        if method == "chat.postMessage":
            fields = {"text": p.get("text", ""), "blocks": p.get("blocks")}
            if isinstance(p.get("metadata"), dict):
                fields["metadata"] = p["metadata"]
            msg = self._store(channel, fields, p.get("thread_ts"))
            return {"ok": True, "channel": channel, "ts": msg["ts"], "message": dict(msg)}
        if method == "chat.update":
            target = self._messages.get(channel, {}).get(p.get("ts", ""))
            if target is None:
                return {"ok": False, "error": "message_not_found"}
            changes = {k: p.get(k) for k in ("text", "blocks", "attachments")}
            target.update({k: v for k, v in changes.items() if v is not None})
            target["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return {
                "ok": True,
                "channel": channel,
                "ts": target["ts"],
                "text": target["text"],
                "message": dict(target),
            }
        if method == "usergroups.users.list":
            group = p.get("usergroup", "")
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.usergroups[group])}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.list":  # one page: the stand-in knows few channels
            return {"ok": True, "channels": [
                {"id": cid, "name": name, "is_member": member}
                for name, (cid, member) in self.channels.items()
            ], "response_metadata": {"next_cursor": ""}}  # fmt: skip
        if method == "conversations.history":  # top-level messages, newest first
            oldest = float(p.get("oldest") or 0)
            found = [
                copy.deepcopy(m)
                for m in self._messages.get(channel, {}).values()
                if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) >= oldest
            ]
            found.sort(key=lambda m: float(m["ts"]), reverse=True)
            return {"ok": True, "messages": found[: int(p.get("limit") or 100)], "has_more": False}
        if method == "conversations.replies":
            msgs = self.thread(channel, p.get("ts", ""))  # the parent may be a human's, unseen
            if not msgs:
                return {"ok": False, "error": "thread_not_found"}
            return {
                "ok": True,
                "messages": msgs,
                "has_more": False,
                "response_metadata": {"next_cursor": ""},
            }
        if method == "users.info":
            uid = p.get("user", "")
            return {
                "ok": True,
                "user": {
                    "id": uid,
                    "team_id": self.team_id,
                    "name": uid.lower(),
                    "real_name": uid,
                    "is_bot": uid == self.bot_user_id,
                    "tz": "UTC",
                    "deleted": False,
                    "profile": {"real_name": uid, "display_name": uid.lower()},
                },
            }
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._seq):08d}"
            self._uploads[file_id] = {
                "filename": p.get("filename", ""),
                "length": int(p.get("length") or 0),
                "content": None,
            }
            return {
                "ok": True,
                "upload_url": f"{self.root_url}/upload/{file_id}",
                "file_id": file_id,
            }
        if method == "files.completeUploadExternal":
            return self._complete_upload(p, channel)
        return {"ok": True}

    def _complete_upload(self, p: dict[str, Any], channel: str) -> dict[str, Any]:
        files = []
        for f in p.get("files") or []:
            upload = self._uploads.get(f.get("id", ""))
            if upload is None or upload["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            files.append(
                {
                    "id": f["id"],
                    "title": f.get("title") or upload["filename"],
                    "name": upload["filename"],
                    "size": len(upload["content"]),
                }
            )
        channel = channel or (p.get("channels") or "").split(",")[0]
        if channel:
            fields = {"text": p.get("initial_comment", ""), "files": files, "upload": True}
            self._store(channel, fields, p.get("thread_ts"))
        return {"ok": True, "files": files}

    def _store(
        self, channel: str, fields: dict[str, Any], thread_ts: str | None, *, bot: bool = True
    ) -> dict[str, Any]:
        """Add a message (the bot's unless ``bot=False``) to a channel; lock held."""
        msg = {"type": "message", "ts": self._next_ts(), **fields}
        if bot:
            msg.update(user=self.bot_user_id, bot_id=self.bot_id)
        if fields.get("blocks") is None:
            msg.pop("blocks", None)
        if thread_ts:
            msg["thread_ts"] = thread_ts
            parent = self._messages.get(channel, {}).get(thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = msg["ts"]
        self._messages.setdefault(channel, {})[msg["ts"]] = msg
        return msg

    def _next_ts(self) -> str:
        """Slack's ts: the time of posting in microseconds, unique in the workspace."""
        micros = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _describe(call: RecordedCall) -> str:
    keys = ("channel", "channel_id", "thread_ts", "ts")
    bits = [f"{k}={call.params[k]}" for k in keys if call.params.get(k)]
    return f"{call.method}({' '.join(bits)})" if bits else call.method


class SignedSender:
    """Sends correctly signed Slack requests (slash commands, Events API callbacks,
    interactivity payloads) to a bot's HTTP endpoint, as Slack does."""

    def __init__(
        self, bot_url: str, signing_secret: str, *, team_id: str = "T0TEAM", timeout: float = 10.0
    ) -> None:
        self.bot_url, self.team_id, self.timeout = bot_url, team_id, timeout
        self.verifier = SignatureVerifier(signing_secret)
        # One pooled client: connections are kept alive, as Slack's are, and building a
        # client per request (TLS context included) would be timed as the bot's latency.
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SignedSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def signed_headers(
        self, body: str, *, timestamp: int | None = None, content_type: str = _FORM
    ) -> dict[str, str]:
        """Headers Slack would send with ``body``: content type, timestamp and v0 signature."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.verifier.generate_signature(timestamp=ts, body=body) or ""
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }

    def _post(
        self,
        body: str,
        content_type: str,
        sign: bool,
        timestamp: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if sign:
            headers = self.signed_headers(body, timestamp=timestamp, content_type=content_type)
        headers.update(extra or {})
        return self._client.post(self.bot_url, content=body, headers=headers)

    def slash_command(
        self,
        text: str,
        *,
        command: str = "/ops",
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0OPS",
        response_url: str | None = None,
        trigger_id: str | None = None,
        sign: bool = True,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """POST a form-encoded slash command. Pass ``SlackStandIn.response_url()`` as
        ``response_url`` so the bot's ``respond()`` lands on the stand-in."""
        form = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "team_domain": "opsbot-test",
            "channel_id": channel_id,
            "channel_name": "ops",
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0OPSBOT",
            "is_enterprise_install": "false",
            "response_url": response_url or f"https://hooks.slack.com/commands/{self.team_id}/1/x",
            "trigger_id": trigger_id or f"T{uuid.uuid4().hex[:12]}",
        }
        return self._post(urlencode(form), _FORM, sign, timestamp)

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        sign: bool = True,
        authorizations_user_id: str = "U0BOT",
    ) -> httpx.Response:
        """POST an ``event_callback`` envelope; ``retry_num`` adds Slack's retry headers."""
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0OPSBOT",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": authorizations_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
        retry = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        extra = retry if retry_num is not None else {}
        return self._post(json.dumps(envelope), "application/json", sign, extra=extra)

    def interaction(self, payload: dict[str, Any], *, sign: bool = True) -> httpx.Response:
        """POST an interactivity payload as Slack does: form body ``payload=<json>``."""
        body = urlencode({"payload": json.dumps(payload)})
        return self._post(body, _FORM, sign)


def print_to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


def serve_forever(
    host: str = "127.0.0.1", port: int = 3001, *, echo: Callable[[str], None] = print_to_stderr
) -> None:
    """Run the stand-in until Ctrl-C, echoing one line per recorded call."""

    def on_call(call: RecordedCall) -> None:
        p = call.params
        channel = p.get("channel") or p.get("channel_id")
        pairs = {"channel": channel, "thread_ts": p.get("thread_ts")}
        bits = [call.method] + [f"{key}={value}" for key, value in pairs.items() if value]
        if p.get("text"):
            bits.append("text=" + str(p["text"]).replace("\n", " ")[:80])
        echo(f"{time.strftime('%H:%M:%S')} {' '.join(bits)}")

    with SlackStandIn(host, port, on_call=on_call) as standin:
        echo(f"Slack stand-in listening; base_url={standin.base_url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            echo("stopping")


if __name__ == "__main__":
    serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 3001)
