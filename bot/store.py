"""The store: what the bot must remember outside a conversation's checkpoints.

- ``AuditRecord``: every command and question, who sent it, from where;
- ``Conversation``: the Slack threads the bot takes part in (replies there continue them);
- ``Incident``: an Alertmanager alert group (by ``groupKey``) and the thread it opened, so
  repeated notifications go to that thread and a resolution updates its first message.
- ``RateHit``: calls counted against a per-person budget, shared by all replicas.

SQLite by default, Postgres by URL (``OPSBOT_DATABASE_URL``). The schema is Alembic's
(``bot/migrations``); opening a store brings it up to date unless told not to.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Engine, text
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from bot.db import as_utc, make_engine
from bot.migrate import upgrade


def _now() -> datetime:
    return datetime.now(UTC)


class AuditRecordBase(SQLModel):
    source: str = Field(max_length=32, description="slack, cli, webhook, ...")
    user: str = Field(max_length=64, description="Slack user id or local user name")
    action: str = Field(max_length=64, description="e.g. '/ops ask', 'mention', 'chat'")
    text: str = Field(default="", max_length=4000)
    channel: str | None = Field(default=None, max_length=64)
    thread_ts: str | None = Field(default=None, max_length=32)


class AuditRecord(AuditRecordBase, table=True):
    __tablename__ = "audit_record"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now, index=True)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    thread_id: str = Field(primary_key=True, max_length=128)
    channel: str = Field(max_length=64)
    thread_ts: str = Field(max_length=32)
    started_by: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=_now)


class IncidentBase(SQLModel):
    group_key: str = Field(
        max_length=1024, description="Alertmanager's groupKey (its first 1,024 characters)"
    )
    receiver: str = Field(default="", max_length=256)
    title: str = Field(default="", max_length=512, description="alert names and group labels")
    channel: str = Field(max_length=64)
    thread_ts: str = Field(max_length=32, description="ts of the thread's first message")
    status: str = Field(default="firing", max_length=16, description="firing or resolved")


class Incident(IncidentBase, table=True):
    __tablename__ = "incident"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True, description="sha256 of group_key")
    opened_at: datetime = Field(default_factory=_now)
    triaged_at: datetime | None = None
    resolved_at: datetime | None = None
    notifications: int = 1


class RateHit(SQLModel, table=True):
    __tablename__ = "rate_hit"
    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=200, description="budget group and person")
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Store:
    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = 5) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, pool_size=pool_size)
        if migrate:
            upgrade(self.engine)

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def hit(self, bucket: str, *, limit: int, window_s: float) -> float | None:
        """Count one call against ``bucket`` if fewer than ``limit`` fell in the last
        ``window_s`` seconds (None); otherwise the seconds until one leaves the window."""
        now = _now()
        since = now - timedelta(seconds=window_s)
        with Session(self.engine) as session:
            if self.engine.dialect.name == "postgresql":  # one count-and-insert per bucket
                session.exec(  # type: ignore[call-overload]
                    text("SELECT pg_advisory_xact_lock(hashtext(:bucket))"),
                    params={"bucket": bucket},
                )
            session.execute(
                delete(RateHit).where(col(RateHit.bucket) == bucket, col(RateHit.at) < since)
            )
            used, oldest = session.exec(
                select(func.count(), func.min(RateHit.at)).where(RateHit.bucket == bucket)
            ).one()
            if used >= limit:
                session.rollback()
                first = as_utc(oldest) or now
                return max(0.0, (first - since).total_seconds())
            session.add(RateHit(bucket=bucket, at=now))
            session.commit()
        return None

    def audit(
        self,
        *,
        source: str,
        user: str,
        action: str,
        text: str = "",
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> AuditRecord:
        record = AuditRecord(
            source=source,
            user=user,
            action=action,
            text=text[:4000],
            channel=channel,
            thread_ts=thread_ts,
        )
        with Session(self.engine) as session:
            session.add(record)
            session.commit()
            session.refresh(record)
        return record

    def audit_log(self, *, limit: int = 100) -> list[AuditRecord]:
        with Session(self.engine) as session:
            query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)  # type: ignore[union-attr]
            return list(session.exec(query))

    def start_conversation(self, *, channel: str, thread_ts: str, user: str) -> str:
        thread_id = conversation_id(channel, thread_ts)
        with Session(self.engine) as session:
            if session.get(Conversation, thread_id) is None:
                session.add(
                    Conversation(
                        thread_id=thread_id, channel=channel, thread_ts=thread_ts, started_by=user
                    )
                )
                session.commit()
        return thread_id

    def has_conversation(self, *, channel: str, thread_ts: str) -> bool:
        with Session(self.engine) as session:
            return session.get(Conversation, conversation_id(channel, thread_ts)) is not None

    def incident(self, *, group_key: str) -> Incident | None:
        with Session(self.engine) as session:
            return session.exec(
                select(Incident).where(Incident.key_hash == key_hash(group_key))
            ).first()

    def open_incident(self, incident: IncidentBase, *, group_key: str) -> Incident:
        """Record a new thread for an alert group (replacing a resolved one of the same key).

        ``group_key`` is the whole key, of any length: the row keeps its first 1,024
        characters (``incident.group_key``) and is found by the hash of the whole key."""
        row = Incident.model_validate(incident, update={"key_hash": key_hash(group_key)})
        with Session(self.engine) as session:
            old = session.exec(select(Incident).where(Incident.key_hash == row.key_hash)).first()
            if old is not None:
                session.delete(old)
                session.flush()
            session.add(row)
            session.commit()
            session.refresh(row)
        return row

    def update_incident(self, incident_id: int, **changes: object) -> Incident:
        with Session(self.engine) as session:
            row = session.get(Incident, incident_id)
            if row is None:
                raise KeyError(incident_id)
            for name, value in changes.items():
                setattr(row, name, value)
            session.add(row)
            session.commit()
            session.refresh(row)
        return row


def key_hash(group_key: str) -> str:
    """Group keys can be long; the unique index is on their hash."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def conversation_id(channel: str, thread_ts: str) -> str:
    """The agent thread of a Slack thread."""
    return f"slack:{channel}:{thread_ts}"
