"""The local deploy target: one model-server process per live version on this host, behind
a stable address per model and environment.

``start`` runs llama.cpp's OpenAI-compatible server (the ``local-llm`` extra) for a GGUF
version on a free port; ``health`` waits until ``/v1/models`` lists the served name and
one short completion answers (llama-cpp-python's server has no ``/health``); ``switch``
points the router (``bot/http/router.py``) at it in the database, atomically; ``stop``
drains and ends the old process. If the new version never turns healthy, the old one
keeps serving and the reason comes with the tail of the server's log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import DateTime, Engine
from sqlmodel import Field, Session, SQLModel

from bot.llm_server import LocalModelError, llama_server_command
from bot.net import free_port
from bot.settings import Settings

HEALTH_TIMEOUT_S = 120.0
DRAIN_S = 2.0


class TargetError(Exception):
    """The new version could not be started or never turned healthy; the old one serves."""


class ModelServing(SQLModel, table=True):
    """Where the stable address of a model and environment sends requests now."""

    __tablename__ = "model_serving"
    model: str = Field(primary_key=True, max_length=100)
    env: str = Field(primary_key=True, max_length=32)
    version: str = Field(max_length=100)
    served_name: str = Field(max_length=200)
    upstream: str = Field(max_length=200, description="base URL of the live server's /v1")
    pid: int | None = None
    since: datetime = Field(
        default_factory=lambda: datetime.now(UTC), sa_type=DateTime(timezone=True)
    )


@dataclass
class Started:
    version: str
    served_name: str
    upstream: str
    pid: int
    log: Path


def stable_address(settings: Settings, model: str, env: str) -> str:
    """The OpenAI-compatible base URL of a model in an environment (the router's)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}/models/{model}/{env}/v1"


def served_name(plan: dict[str, Any]) -> str:
    params = plan.get("params") or {}
    return str(params.get("served_name") or f"{plan['model']}-{plan['version']}")


class LocalTarget:
    name = "local"

    def __init__(self, engine: Engine, data_dir: Path) -> None:
        self.engine = engine
        self.servers = data_dir / "servers"
        self.models_dir = data_dir / "models"

    def current(self, model: str, env: str) -> ModelServing | None:
        with Session(self.engine) as session:
            return session.get(ModelServing, (model, env))

    def start(self, plan: dict[str, Any]) -> Started:
        uri = str(plan["uri"])
        if not uri.endswith(".gguf") or not Path(uri).is_file():
            raise TargetError(f"the local target serves local GGUF files; {uri} is not one")
        params = plan.get("params") or {}
        port = free_port()
        try:
            command = llama_server_command(
                Path(uri), host="127.0.0.1", port=port,
                n_ctx=int(params.get("context_length") or 2048), models_dir=self.models_dir,
            )  # fmt: skip
        except LocalModelError as exc:
            raise TargetError(str(exc)) from None
        name = served_name(plan)
        command[command.index("--model_alias") + 1] = name
        if params.get("args"):
            command += str(params["args"]).split()
        self.servers.mkdir(parents=True, exist_ok=True)
        log = self.servers / f"{plan['model']}-{plan['env']}-{plan['version']}-{port}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # its own session: it outlives a restart of the bot
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return Started(plan["version"], name, f"http://127.0.0.1:{port}/v1", proc.pid, log)

    def health(self, started: Started, timeout: float = HEALTH_TIMEOUT_S) -> None:
        """Until the server lists its served name and completes one prompt."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(started.pid):
                raise TargetError(f"the server exited at start:\n{tail(started.log)}")
            try:
                listed = httpx.get(f"{started.upstream}/models", timeout=2).json()
                names = {m.get("id") for m in listed.get("data", [])}
                if started.served_name in names:
                    done = httpx.post(
                        f"{started.upstream}/completions",
                        json={"model": started.served_name, "prompt": "Hello", "max_tokens": 1},
                        timeout=30,
                    )
                    if done.status_code == 200:
                        return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        self.stop(started.pid)
        raise TargetError(f"not healthy after {timeout:.0f} s:\n{tail(started.log)}")

    def switch(self, model: str, env: str, started: Started) -> int | None:
        """Point the stable address at the new server; returns the old server's pid."""
        with Session(self.engine) as session:
            row = session.get(ModelServing, (model, env))
            old = row.pid if row else None
            row = row or ModelServing(model=model, env=env, version="", served_name="",
                                      upstream="")  # fmt: skip
            row.version, row.served_name = started.version, started.served_name
            row.upstream, row.pid, row.since = started.upstream, started.pid, datetime.now(UTC)
            session.add(row)
            session.commit()
        return old

    def restore(self, model: str, env: str, before: ModelServing | None) -> None:
        """Point the stable address back where it pointed before a switch."""
        with Session(self.engine) as session:
            row = session.get(ModelServing, (model, env))
            if before is None:
                if row is not None:
                    session.delete(row)
            else:
                row = row or ModelServing(model=model, env=env, version="", served_name="",
                                          upstream="")  # fmt: skip
                row.version, row.served_name = before.version, before.served_name
                row.upstream, row.pid, row.since = before.upstream, before.pid, before.since
                session.add(row)
            session.commit()

    def stop(self, pid: int | None, drain_s: float = 0.0) -> None:
        if pid is None or not alive(pid):
            return
        time.sleep(drain_s)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child (started before a restart): ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
