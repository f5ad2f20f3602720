"""Real servers for integration tests: the bot over HTTP (uvicorn) and the Slack stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.net import free_port
from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn

SECRET = "integration-signing-secret"
TOKEN = "xoxb-integration-token"


@contextmanager
def running_bot(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port; yields its /slack/events URL."""
    port = free_port()
    settings = settings.model_copy(update={"port": port, "host": "127.0.0.1"})
    config = uvicorn.Config(
        build_web_app(settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            checks = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).json()["checks"]
            if checks["agent"] == checks["database"] == "ok":  # others may be down on purpose
                break
            time.sleep(0.05)
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        raise RuntimeError("bot did not start")
    try:
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def bot_settings(tmp_path: Path, sample_index: Path, standin: SlackStandIn) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        index={"dir": sample_index},  # type: ignore[arg-type]
        slack={"bot_token": TOKEN, "signing_secret": SECRET, "api_url": standin.base_url},  # type: ignore[arg-type]
    )


@pytest.fixture
def bot(bot_settings: Settings) -> Iterator[SignedSender]:
    with running_bot(bot_settings) as url:
        yield SignedSender(url, SECRET)
