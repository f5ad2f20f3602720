"""A real MLflow tracking server for tests: SQLite backend, artifacts proxied by the server
(``mlflow-artifacts:/``), on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.net import free_port

START_TIMEOUT_S = 120.0


def mlflow_command() -> str | None:
    """The ``mlflow`` script of the interpreter running the tests (the mlflow extra)."""
    beside = Path(sys.executable).parent / "mlflow"
    return str(beside) if beside.is_file() else shutil.which("mlflow")


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    command = mlflow_command()
    if command is None:
        raise RuntimeError("mlflow is not installed: pip install 'opsbot[mlflow]'")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "server.log").open("ab")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        [command, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
