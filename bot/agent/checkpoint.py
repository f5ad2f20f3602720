"""The agent's checkpointer: SQLite by default, Postgres when the database URL says so.

Every step of every thread is saved, so a conversation (and a paused approval) survives
a restart of the bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from bot.db import is_postgres, libpq_url
from bot.migrate import MIGRATION_LOCK
from bot.settings import Settings


@asynccontextmanager
async def _migration_lock(pool: Any) -> AsyncIterator[None]:
    """Replicas starting together set the checkpoint tables up one at a time.

    The lock is tried, not waited for in the database: LangGraph's migrations create
    indexes CONCURRENTLY, which wait for every statement running, so a replica blocked
    inside ``pg_advisory_lock`` would deadlock the one holding it."""
    async with pool.connection() as conn:
        while True:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok",
                                            (MIGRATION_LOCK + 1,))).fetchone()  # fmt: skip
            if row and row["ok"]:
                break
            await asyncio.sleep(0.2)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK + 1,))


@asynccontextmanager
async def open_checkpointer(
    settings: Settings, *, pool_size: int = 4
) -> AsyncIterator[BaseCheckpointSaver]:
    """The checkpointer for the database URL; on Postgres over a pool of ``pool_size``
    connections, so workers of one replica checkpoint side by side."""
    url = settings.database_url
    if is_postgres(url):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            libpq_url(url),
            min_size=1,
            max_size=max(2, pool_size),
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        )
        await pool.open(wait=True, timeout=30)
        try:
            postgres = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            async with _migration_lock(pool):
                await postgres.setup()
            yield postgres
        finally:
            await pool.close()
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = settings.checkpoint_path
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver
