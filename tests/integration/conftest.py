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

from bot.llm_server import LocalModelError, embedded_model_file
from bot.net import free_port
from bot.server import build_web_app
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn

SECRET = "integration-signing-secret"
TOKEN = "xoxb-integration-token"


@contextmanager
def running_bot(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The real app under uvicorn on a loopback port (free unless given); yields its
    /slack/events URL."""
    port = port or free_port()
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


@pytest.fixture(scope="session")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged Gemma 3 270M GGUF (the local-llm extra), unpacked once."""
    try:
        return embedded_model_file(tmp_path_factory.mktemp("models"))
    except LocalModelError as exc:
        pytest.skip(f"LOUD SKIP: the packaged Gemma GGUF is not installed ({exc})")
