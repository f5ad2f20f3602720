"""Database engines: one URL, SQLite by default or Postgres for several replicas.

- ``postgresql://`` and ``postgresql+psycopg://`` both mean psycopg 3 (the driver opsbot
  installs); the LangGraph checkpointer gets the plain libpq form of the same URL.
- SQLite runs in WAL mode with a busy timeout, and every transaction begins IMMEDIATE so
  that two writers queue for the lock instead of failing half-way (the job queue relies on
  it); the writers of the process take turns on a lock of their own first. SQLite serves
  one process; Postgres serves many.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, create_engine, event
from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_S = 30


def as_utc(moment: datetime | None) -> datetime | None:
    """Times read back from SQLite are naive; the store writes them all in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def changed_rows(session: Session, statement: Any) -> int:
    """Run an UPDATE (or DELETE); how many rows it changed (compare-and-set callers)."""
    result = cast("CursorResult[Any]", session.execute(statement))
    return int(result.rowcount or 0)


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def sqlalchemy_url(url: str) -> str:
    """The URL SQLAlchemy should use: Postgres always through psycopg 3."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def libpq_url(url: str) -> str:
    """The URL psycopg (and the LangGraph checkpointer) takes: no SQLAlchemy driver part."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url``; creates the folder of a SQLite file."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if not url.startswith("sqlite"):
        return create_engine(
            sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    # Writers of this process take turns on a lock before SQLite's: a waiter is woken the
    # moment the writer before it commits, instead of sleeping in SQLite's busy handler
    # (which backs off in steps of up to 100 ms and made the tail of acks slow).
    turn = threading.RLock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        turn.acquire()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turn.release()
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        with contextlib.suppress(RuntimeError):  # not held: the BEGIN itself failed
            turn.release()

    return engine
