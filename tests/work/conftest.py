"""The job queue's tests run on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from bot.store import Store
from bot.work.queue import JobQueue


@pytest.fixture
def store(db_url: str) -> Store:
    return Store(db_url)


@pytest.fixture
def queue(store: Store) -> JobQueue:
    return JobQueue(store.engine, lease_s=30)
