"""Eval schedules: cron and time zones read by croniter, bad ones explained, and a due time
fired once however many replicas see it (the job's key, then a compare-and-set)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from bot.db import as_utc
from bot.store import Store
from bot.work.evals import parse_channel, should_post
from bot.work.jobs import eval_job
from bot.work.queue import JobQueue
from evals.schedule import EvalSchedule, ScheduleError, Schedules, due_key, next_time


def test_next_times_follow_the_cron_expression_in_its_time_zone() -> None:
    after = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 07:30 in Berlin (winter, UTC+1)
    assert next_time("0 8 * * *", "Europe/Berlin", after) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert next_time("0 8 * * *", "UTC", after) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert next_time("*/15 * * * *", "UTC", after) == datetime(2026, 12, 1, 6, 45, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="not a cron expression"):
        next_time("every morning", "UTC", after)
    with pytest.raises(ScheduleError, match="not a time zone"):
        next_time("0 8 * * *", "Mars/Olympus", after)


def test_channels_and_when_to_post() -> None:
    assert parse_channel("<#C0OPS|ops>") == "C0OPS" and parse_channel("C0OPS") == "C0OPS"
    assert parse_channel("#ops") == "#ops" and parse_channel("ops channel") is None

    class Run:
        def __init__(self, status: str, significant: bool = False) -> None:
            self.status = status
            self.comparison = {"metrics": {"m": {"significant": significant}}}

    assert should_post("always", Run("passed"), Run("passed"))
    assert not should_post("failure", Run("passed"), None) and should_post(
        "failure", Run("failed"), None
    )
    assert not should_post("change", Run("passed"), Run("passed"))
    assert should_post("change", Run("passed"), Run("failed"))
    assert should_post("change", Run("passed", significant=True), Run("passed"))


def test_a_due_time_fires_once_across_racing_replicas(db_url: str) -> None:
    store = Store(db_url)
    schedules, queue = Schedules(store.engine), JobQueue(store.engine)
    row = schedules.add("tools", "0 8 * * *", "C0OPS", by="U0ALICE")
    with Session(store.engine) as session:  # it was due a minute ago
        session.execute(
            update(EvalSchedule).values(next_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        session.commit()
    (due,) = schedules.due()
    recorded, advanced = [], []

    def replica() -> None:  # what fire_due does, from many processes at once
        payload = {"suite": due.suite, "split": due.split, "user": due.created_by,
                   "channel": due.channel, "schedule_id": due.id}  # fmt: skip
        recorded.append(queue.enqueue(eval_job(payload, due_key(due))) is not None)
        advanced.append(schedules.advance(due))

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorded.count(True) == 1 and advanced.count(True) == 1
    assert schedules.due() == []
    moved = schedules.get(row.id or 0)
    assert moved is not None and as_utc(moved.next_at) > datetime.now(UTC)
    assert schedules.remove(row.id or 0) and not schedules.remove(row.id or 0)
    assert schedules.all() == []
