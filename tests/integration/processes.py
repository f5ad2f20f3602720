"""`opsbot serve` as a real process, to kill (-9), stop (SIGTERM) and start again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bot.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], timeout: float = 180, poll: float = 0.1) -> float:
    """Poll ``condition`` until it holds (the moment it did, monotonic); AssertionError
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)
    return time.monotonic()


class BotProcess:
    """One replica. ``env`` holds its OPSBOT_* settings; the port is its own."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **env, "OPSBOT_PORT": str(self.port)}
        self.env.setdefault("OPSBOT_HOST", "127.0.0.1")
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.base}/slack/events"

    def start(self, *, ready: bool = True, timeout: float = 90) -> BotProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.wait("/readyz" if ready else "/livez", timeout)
        return self

    def wait(self, path: str, timeout: float = 90) -> float:
        """Seconds until ``path`` answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited ({self.proc.returncode}); see {self.log}")
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{path} not ready after {timeout} s; see {self.log}")

    def kill(self) -> None:
        """kill -9: no clean-up at all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, and wait for the process to end; its exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
