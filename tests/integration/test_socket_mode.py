"""Socket Mode: requests come over a WebSocket (a local server standing in for Slack's),
and the HTTP port still serves /alertmanager, /livez, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import WSMsgType, web

from bot.net import free_port
from bot.slack.standin import SlackStandIn
from tests.integration.conftest import TOKEN
from tests.integration.processes import BotProcess
from tests.integration.test_durable import ALERTS, bot_env, notification

pytestmark = pytest.mark.integration


class SocketStandIn:
    """A WebSocket server speaking Socket Mode: says hello, pushes envelopes, keeps acks."""

    def __init__(self) -> None:
        self.port = free_port()
        self.acks: list[dict[str, Any]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0OPSBOT"}})  # fmt: skip
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
        return ws

    def __enter__(self) -> SocketStandIn:
        def run() -> None:
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_get("/link", self._socket)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            self._ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def connected(self) -> bool:
        return bool(self._sockets)

    def push(self, envelope_type: str, payload: dict[str, Any]) -> str:
        envelope_id = uuid.uuid4().hex
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                    "accepts_response_payload": envelope_type == "slash_commands"}  # fmt: skip
        future = asyncio.run_coroutine_threadsafe(self._sockets[-1].send_json(envelope), self._loop)
        future.result(5)
        return envelope_id


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


def test_socket_mode_answers_commands_and_serves_http_endpoints(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    with SocketStandIn() as socket:
        standin.socket_url = socket.url
        env = bot_env(tmp_path, sample_index, standin, OPSBOT_SLACK_APP_TOKEN="xapp-1-test")
        with BotProcess(env, tmp_path / "bot.log").start() as bot:
            deadline = time.monotonic() + 30
            while not socket.connected():
                assert time.monotonic() < deadline, "the bot never connected"
                time.sleep(0.1)
            command = {
                "command": "/ops", "text": "ask what should I check when pods crash-loop?",
                "user_id": "U0ALICE", "channel_id": "C0OPS", "team_id": "T0TEAM",
                "trigger_id": "T-socket-1", "response_url": "https://hooks.example/1",
            }  # fmt: skip
            envelope = socket.push("slash_commands", command)
            standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
            assert any(a.get("envelope_id") == envelope for a in socket.acks)

            assert httpx.get(f"{bot.base}/livez").status_code == 200
            assert httpx.get(f"{bot.base}/readyz").status_code == 200
            assert "opsbot_slack_requests_total" in httpx.get(f"{bot.base}/metrics").text
            assert httpx.post(f"{bot.base}/slack/events", content=b"{}").status_code == 404
            hook = httpx.post(f"{bot.base}/alertmanager", json=notification("socket-group"))
            assert hook.status_code == 202
            standin.wait_for(
                "chat.postMessage",
                lambda c: c.params["channel"] == ALERTS and "FIRING" in c.params["text"],
                30,
            )
