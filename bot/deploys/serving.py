"""Where the stable address of each model and environment sends its requests now.

The router (``bot/http/router.py``) reads one row per model and environment; targets whose
versions are reached through the bot's router (``local``, ``vllm-lora``) move it with
``point`` and ``restore``, each one UPDATE in one transaction, so the switch is atomic for
every replica reading the same database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine
from sqlmodel import Field, Session, SQLModel

from bot.deploys.targets.base import Live
from bot.settings import Settings


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


def stable_address(settings: Settings, model: str, env: str) -> str:
    """The OpenAI-compatible base URL of a model in an environment (the bot's router)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}/models/{model}/{env}/v1"


class Serving:
    """The router's table on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, model: str, env: str) -> Live | None:
        with Session(self.engine) as session:
            row = session.get(ModelServing, (model, env))
        if row is None:
            return None
        ref = {"pid": row.pid} if row.pid is not None else {}
        return Live(row.version, row.served_name, row.upstream, ref)

    def point(self, model: str, env: str, live: Live | None) -> None:
        """Send the address's requests to ``live`` (None: nothing serves, the router 404s)."""
        with Session(self.engine) as session:
            row = session.get(ModelServing, (model, env))
            if live is None:
                if row is not None:
                    session.delete(row)
            else:
                row = row or ModelServing(model=model, env=env, version="", served_name="",
                                          upstream="")  # fmt: skip
                row.version, row.served_name, row.upstream = (
                    live.version, live.served_name, live.upstream,
                )  # fmt: skip
                pid = live.ref.get("pid")
                row.pid, row.since = (int(pid) if pid is not None else None), datetime.now(UTC)
                session.add(row)
            session.commit()
