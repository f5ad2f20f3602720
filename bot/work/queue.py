"""The job queue: accepted work, in the database before it is acknowledged.

Intake records a job and only then acks; workers claim jobs, run them and mark them done.

- **Claim.** A worker takes the oldest queued job of its queue whose ``serial_key`` has no
  job running (one job at a time per Slack thread, per alert group — across replicas, by a
  unique index over running jobs' keys). On Postgres the candidate row is taken with
  ``FOR UPDATE SKIP LOCKED``, so replicas never wait on each other; on SQLite every
  transaction begins IMMEDIATE, so claims are serialised.
- **Lease.** A claimed job carries a lease that its worker renews while it runs. A job
  whose lease ran out (its process was killed) is queued again and retried, up to
  ``max_attempts``; its handler reads ``progress`` to skip the effects it already had.
- **Dedup.** A job may carry a ``dedup_key`` (a Slack event id, a trigger id): a second
  job with the same key is not recorded, so a retried delivery runs once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Engine, Index, and_, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from bot.db import as_utc, changed_rows, is_postgres

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
#: Queues: people's questions, and alert triage (its own pool, so neither starves the other).
ANSWERS, TRIAGE, EVALS = "answers", "triage", "evals"


def _now() -> datetime:
    return datetime.now(UTC)


def _time_column(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


class JobBase(SQLModel):
    queue: str = Field(max_length=32, description="answers or triage")
    kind: str = Field(max_length=32, description="what the worker does, e.g. slack_command")
    serial_key: str = Field(max_length=128, description="jobs with one key run one at a time")
    dedup_key: str | None = Field(default=None, max_length=128, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    max_attempts: int = Field(default=3, ge=1, le=20)


class Job(JobBase, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_claim", "queue", "state", "id"),
        Index(
            "ux_job_running_serial_key",
            "serial_key",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default=QUEUED, max_length=16)
    progress: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = _time_column(default=None)
    run_after: datetime = _time_column(default_factory=_now)
    created_at: datetime = _time_column(default_factory=_now)
    started_at: datetime | None = _time_column(default=None)
    finished_at: datetime | None = _time_column(default=None)
    error: str | None = Field(default=None, max_length=2000)

    @property
    def age_s(self) -> float:
        created = as_utc(self.created_at) or _now()
        return (_now() - created).total_seconds()


def _owned(job_id: int, owner: str) -> tuple[Any, ...]:
    """The job, while ``owner`` runs it."""
    return (col(Job.id) == job_id, col(Job.owner) == owner, col(Job.state) == RUNNING)


class JobQueue:
    def __init__(self, engine: Engine, *, lease_s: float = 30.0) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_s)
        self._postgres = is_postgres(engine.url.drivername)

    def enqueue(self, job: JobBase) -> Job | None:
        """Record a job; None when its ``dedup_key`` was recorded before (nothing new)."""
        row = Job.model_validate(job)
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
            session.refresh(row)
        return row

    def claim(self, queue: str, owner: str) -> Job | None:
        """Take the next job of ``queue`` for ``owner``, or None when none may run now."""
        self.requeue_expired()
        skip: list[int] = []
        for _ in range(20):  # candidates whose key another worker took a moment ago
            with Session(self.engine) as session:
                now = _now()
                running = select(Job.serial_key).where(Job.state == RUNNING)
                query = (
                    select(Job)
                    .where(Job.queue == queue, Job.state == QUEUED, Job.run_after <= now)
                    .where(col(Job.serial_key).not_in(running), col(Job.id).not_in(skip))
                    .order_by(col(Job.id))
                    .limit(1)
                )
                if self._postgres:
                    query = query.with_for_update(skip_locked=True)
                candidate = session.exec(query).first()
                if candidate is None:
                    return None
                candidate.state, candidate.owner = RUNNING, owner
                candidate.lease_until, candidate.started_at = now + self.lease, now
                candidate.attempts += 1
                session.add(candidate)
                try:
                    session.commit()
                except IntegrityError:  # a job of the same key started meanwhile
                    session.rollback()
                    assert candidate.id is not None
                    skip.append(candidate.id)
                    continue
                session.refresh(candidate)
                return candidate
        return None

    def requeue_expired(self) -> int:
        """Queue again the jobs whose worker stopped renewing its lease (killed, frozen);
        those out of attempts fail."""
        now = _now()
        with Session(self.engine) as session:
            expired = and_(col(Job.state) == RUNNING, col(Job.lease_until) < now)
            failed = changed_rows(
                session,
                update(Job)
                .where(expired, col(Job.attempts) >= col(Job.max_attempts))
                .values(state=FAILED, finished_at=now, error="its worker stopped, too often"),
            )
            queued = changed_rows(
                session,
                update(Job).where(expired).values(state=QUEUED, owner=None, lease_until=None),
            )
            session.commit()
        return failed + queued

    def renew(self, job_id: int, owner: str) -> bool:
        """Extend a running job's lease; False when the job is no longer this owner's."""
        with Session(self.engine) as session:
            count = changed_rows(
                session,
                update(Job).where(*_owned(job_id, owner)).values(lease_until=_now() + self.lease),
            )
            session.commit()
        return bool(count)

    def record(self, job_id: int, **progress: Any) -> dict[str, Any]:
        """Merge ``progress`` into the job's record of effects done (a retry reads it)."""
        with Session(self.engine) as session:
            row = session.get(Job, job_id, with_for_update=self._postgres)
            if row is None:
                raise KeyError(job_id)
            row.progress = {**row.progress, **progress}
            session.add(row)
            session.commit()
            return dict(row.progress)

    def finish(self, job_id: int, owner: str, *, error: str | None = None) -> None:
        """Mark a job done (or failed, with the error)."""
        self._end(job_id, owner, FAILED if error else DONE, error=error)

    def retry_later(self, job_id: int, owner: str, *, delay_s: float, error: str) -> None:
        """Give a job back to the queue after a failure, to run again in ``delay_s``."""
        self._end(job_id, owner, QUEUED, error=error, run_after=_now() + timedelta(seconds=delay_s))

    def release(self, job_id: int, owner: str) -> None:
        """Give a job back at once, without counting the attempt (a worker shutting down)."""
        with Session(self.engine) as session:
            session.execute(
                update(Job)
                .where(*_owned(job_id, owner))
                .values(state=QUEUED, owner=None, lease_until=None, attempts=col(Job.attempts) - 1)
            )
            session.commit()

    def _end(self, job_id: int, owner: str, state: str, **values: Any) -> None:
        if values.get("error"):
            values["error"] = str(values["error"])[:2000]
        ending = {"finished_at": _now()} if state in (DONE, FAILED) else {}
        with Session(self.engine) as session:
            session.execute(
                update(Job)
                .where(*_owned(job_id, owner))
                .values(state=state, owner=None, lease_until=None, **ending, **values)
            )
            session.commit()

    def get(self, job_id: int) -> Job | None:
        with Session(self.engine) as session:
            return session.get(Job, job_id)

    def jobs(self, *, state: str | None = None, queue: str | None = None) -> list[Job]:
        with Session(self.engine) as session:
            query = select(Job).order_by(col(Job.id))
            if state:
                query = query.where(Job.state == state)
            if queue:
                query = query.where(Job.queue == queue)
            return list(session.exec(query))

    def depth(self) -> dict[tuple[str, str], tuple[int, float]]:
        """Per (queue, state) of unfinished jobs: how many, and the oldest one's age (s)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Job.queue, Job.state, func.count(), func.min(Job.created_at))
                .where(col(Job.state).in_((QUEUED, RUNNING)))
                .group_by(Job.queue, Job.state)
            ).all()
        now = _now()
        return {
            (q, s): (int(n), (now - (as_utc(oldest) or now)).total_seconds())
            for q, s, n, oldest in rows
        }
