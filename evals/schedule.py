"""Scheduled eval runs: a suite, a cron expression in a time zone, a channel, and when to
post (``always | failure | change``). Schedules live in the database and survive restarts;
the next run time comes from croniter. A due schedule is fired by whichever replica sees it
first: the eval job is recorded under a key made of the schedule and its due time (a second
replica's, or a retry's, is the same job), then ``next_at`` moves on by compare-and-set
(``UPDATE … WHERE next_at = <the due time read>``), so each due time runs once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import DateTime, Engine, update
from sqlmodel import Field, Session, SQLModel, col, select

from bot.db import as_utc, changed_rows

NotifyOn = Literal["always", "failure", "change"]


def _now() -> datetime:
    return datetime.now(UTC)


class ScheduleError(ValueError):
    """A cron expression, time zone or schedule a person can fix."""


class EvalSchedule(SQLModel, table=True):
    __tablename__ = "eval_schedule"
    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(max_length=64)
    split: str = Field(default="dev", max_length=16)
    cron: str = Field(max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    channel: str = Field(max_length=64)
    notify_on: str = Field(default="always", max_length=16)
    created_by: str = Field(max_length=64)
    next_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    last_run_id: int | None = None
    enabled: bool = True


def next_time(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time after ``after`` that the expression names, in its time zone (UTC)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{timezone!r} is not a time zone (e.g. UTC, Europe/Berlin)") from None
    if not croniter.is_valid(cron):
        raise ScheduleError(f'{cron!r} is not a cron expression (e.g. "0 8 * * 1-5")')
    moment = croniter(cron, after.astimezone(zone)).get_next(datetime)
    return moment.astimezone(UTC)


class Schedules:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, suite: str, cron: str, channel: str, *, by: str, timezone: str = "UTC",
            split: str = "dev", notify_on: str = "always") -> EvalSchedule:  # fmt: skip
        if notify_on not in ("always", "failure", "change"):
            raise ScheduleError(f"notify_on {notify_on!r}: always, failure or change")
        row = EvalSchedule(suite=suite, split=split, cron=cron, timezone=timezone,
                           channel=channel, notify_on=notify_on, created_by=by,
                           next_at=next_time(cron, timezone, _now()))  # fmt: skip
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        return row

    def all(self) -> list[EvalSchedule]:
        with Session(self.engine) as session:
            query = select(EvalSchedule).where(col(EvalSchedule.enabled).is_(True))
            return list(session.exec(query.order_by(col(EvalSchedule.id))))

    def get(self, schedule_id: int) -> EvalSchedule | None:
        with Session(self.engine) as session:
            return session.get(EvalSchedule, schedule_id)

    def remove(self, schedule_id: int) -> bool:
        with Session(self.engine) as session:
            changed = changed_rows(session, update(EvalSchedule)
                                   .where(col(EvalSchedule.id) == schedule_id,
                                          col(EvalSchedule.enabled).is_(True))
                                   .values(enabled=False))  # fmt: skip
            session.commit()
        return bool(changed)

    def due(self, now: datetime | None = None) -> list[EvalSchedule]:
        now = now or _now()
        with Session(self.engine) as session:
            query = select(EvalSchedule).where(col(EvalSchedule.enabled).is_(True),
                                               col(EvalSchedule.next_at) <= now)  # fmt: skip
            return list(session.exec(query))

    def advance(self, schedule: EvalSchedule, now: datetime | None = None) -> bool:
        """Move a fired schedule to its next time, if no one did (True for the one who did)."""
        following = next_time(schedule.cron, schedule.timezone, now or _now())
        with Session(self.engine) as session:
            changed = changed_rows(session, update(EvalSchedule)
                                   .where(col(EvalSchedule.id) == schedule.id,
                                          col(EvalSchedule.next_at) == schedule.next_at)
                                   .values(next_at=following))  # fmt: skip
            session.commit()
        return bool(changed)

    def ran(self, schedule_id: int, run_id: int) -> None:
        with Session(self.engine) as session:
            session.execute(update(EvalSchedule).where(col(EvalSchedule.id) == schedule_id)
                            .values(last_run_id=run_id))  # fmt: skip
            session.commit()


def due_key(schedule: EvalSchedule) -> str:
    """The eval job's dedup key: one job per schedule and due time, whoever records it."""
    due = as_utc(schedule.next_at)
    assert due is not None
    return f"schedule:{schedule.id}:{due.timestamp():.0f}"
