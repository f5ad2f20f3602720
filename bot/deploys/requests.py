"""Deploy requests: an immutable plan, approvals bound to its hash, and a state machine moved
only by compare-and-set updates in the database.

``pending → approved → running → verifying → succeeded | failed → rolled_back``, plus
``rejected``, ``expired`` and ``cancelled``. Whatever the UI shows, a request changes state
only when ``UPDATE … WHERE state = <the state it was read in>`` changes a row, so a double
click, two approvers at once, a Slack retry or two bot processes move it once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Engine, Index, UniqueConstraint, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from bot.db import as_utc, changed_rows

PENDING, APPROVED, RUNNING, VERIFYING = "pending", "approved", "running", "verifying"
SUCCEEDED, FAILED, ROLLED_BACK = "succeeded", "failed", "rolled_back"
REJECTED, EXPIRED, CANCELLED = "rejected", "expired", "cancelled"
#: States in which a request holds its model and environment (a second one is refused).
ACTIVE = (PENDING, APPROVED, RUNNING, VERIFYING)
DECIDED = (APPROVED, RUNNING, VERIFYING, SUCCEEDED, FAILED, ROLLED_BACK, REJECTED, CANCELLED)


def _now() -> datetime:
    return datetime.now(UTC)


def _tz(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


def plan_hash(plan: dict[str, Any]) -> str:
    """The hash an approval is bound to: the plan's canonical JSON."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()


#: Where a request holds its model and environment, as SQL (the partial unique index).
ACTIVE_SQL = f"state IN ({', '.join(repr(state) for state in ACTIVE)})"


class DeployRequest(SQLModel, table=True):
    __tablename__ = "deploy_request"
    # One active request per model and environment, kept by the database itself: two
    # requests made at the same moment (two replicas) cannot both pass the check in create.
    __table_args__ = (
        Index("uq_deploy_request_active", "model", "env", unique=True,
              sqlite_where=text(ACTIVE_SQL), postgresql_where=text(ACTIVE_SQL)),
    )  # fmt: skip
    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(max_length=16, description="deploy or rollback")
    model: str = Field(max_length=100, index=True)
    env: str = Field(max_length=32)
    version: str = Field(max_length=100, description="the version to serve")
    from_version: str | None = Field(default=None, max_length=100)
    plan: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    plan_hash: str = Field(max_length=64)
    state: str = Field(default=PENDING, max_length=16, index=True)
    requested_by: str = Field(max_length=64)
    channel: str = Field(default="", max_length=64)
    thread_ts: str = Field(default="", max_length=32)
    card_ts: str = Field(default="", max_length=32)
    thread_id: str = Field(default="", max_length=128, description="the agent thread paused")
    executions: int = Field(default=0, description="times the target's deploy step ran")
    verdict: str = Field(
        default="", max_length=16,
        description="a verification waiting for a person: inconclusive (Promote / Roll back) "
        "or failed (Roll back, with OPSBOT_DEPLOY_ROLLBACK=ask)",
    )  # fmt: skip
    handles: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"),
        description="the target's handles of the old and the new version (to finish later)",
    )  # fmt: skip
    note: str = Field(default="", max_length=2000)
    created_at: datetime = _tz(default_factory=_now)
    expires_at: datetime = _tz(default_factory=_now)
    decided_at: datetime | None = _tz(default=None)
    finished_at: datetime | None = _tz(default=None)

    @property
    def expired(self) -> bool:
        return self.state == PENDING and (as_utc(self.expires_at) or _now()) <= _now()


class DeployApproval(SQLModel, table=True):
    """One person's decision on one plan (a changed plan needs new approvals)."""

    __tablename__ = "deploy_approval"
    __table_args__ = (UniqueConstraint("request_id", "user", "plan_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="deploy_request.id", index=True)
    user: str = Field(max_length=64)
    plan_hash: str = Field(max_length=64)
    decision: str = Field(max_length=8, description="approve or reject")
    at: datetime = _tz(default_factory=_now)


class BusyError(Exception):
    """Another request holds the model and environment."""

    def __init__(self, other: DeployRequest) -> None:
        super().__init__(
            f"request #{other.id} ({other.model} {other.version} to {other.env}, "
            f"{other.state}) holds {other.model} in {other.env}; wait for it or reject it"
        )
        self.other = other


def _active(session: Session, request: DeployRequest) -> DeployRequest | None:
    """The request that holds ``request``'s model and environment now, if any."""
    return session.exec(
        select(DeployRequest).where(
            DeployRequest.model == request.model,
            DeployRequest.env == request.env,
            col(DeployRequest.state).in_(ACTIVE),
        )
    ).first()


class Requests:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, request: DeployRequest, *, ttl: timedelta) -> DeployRequest:
        """Record a pending request, unless another one is active for its model and env."""
        self.expire_due()
        with Session(self.engine) as session:
            if (other := _active(session, request)) is not None:
                raise BusyError(other)
            request.plan_hash = plan_hash(request.plan)
            request.expires_at = _now() + ttl
            session.add(request)
            try:
                session.commit()
            except IntegrityError:  # another one was recorded between the check and here
                session.rollback()
                if (other := _active(session, request)) is None:
                    raise
                raise BusyError(other) from None
            session.refresh(request)
        return request

    def get(self, request_id: int) -> DeployRequest | None:
        with Session(self.engine) as session:
            return session.get(DeployRequest, request_id)

    def history(self, model: str | None = None, env: str | None = None) -> list[DeployRequest]:
        with Session(self.engine) as session:
            query = select(DeployRequest).order_by(col(DeployRequest.id))
            if model:
                query = query.where(DeployRequest.model == model)
            if env:
                query = query.where(DeployRequest.env == env)
            return list(session.exec(query))

    def move(self, request_id: int, from_state: str | tuple[str, ...], to_state: str,
             **values: Any) -> bool:  # fmt: skip
        """Compare-and-set: ``to_state`` only if the request is in ``from_state`` now."""
        states = (from_state,) if isinstance(from_state, str) else from_state
        if to_state in DECIDED and "decided_at" not in values and PENDING in states:
            values["decided_at"] = _now()
        if to_state in (SUCCEEDED, FAILED, ROLLED_BACK, REJECTED, EXPIRED, CANCELLED):
            values.setdefault("finished_at", _now())
        with Session(self.engine) as session:
            changed = changed_rows(
                session,
                update(DeployRequest)
                .where(col(DeployRequest.id) == request_id, col(DeployRequest.state).in_(states))
                .values(state=to_state, **values),
            )
            session.commit()
        return bool(changed)

    def start_execution(self, request_id: int) -> bool:
        """approved → running, counting the execution; True for the one caller that won."""
        with Session(self.engine) as session:
            changed = changed_rows(
                session,
                update(DeployRequest)
                .where(col(DeployRequest.id) == request_id, col(DeployRequest.state) == APPROVED)
                .values(state=RUNNING, executions=col(DeployRequest.executions) + 1),
            )
            session.commit()
        return bool(changed)

    def update(self, request_id: int, **values: Any) -> None:
        """Fields that are not the state (the card's ts, a note)."""
        assert "state" not in values
        with Session(self.engine) as session:
            session.execute(
                update(DeployRequest).where(col(DeployRequest.id) == request_id).values(**values)
            )
            session.commit()

    def replan(self, request_id: int, plan: dict[str, Any]) -> bool:
        """A pending request whose plan changed takes the new plan: earlier approvals, bound
        to the old hash, no longer count. True when the plan did change."""
        new_hash = plan_hash(plan)
        with Session(self.engine) as session:
            changed = changed_rows(
                session,
                update(DeployRequest)
                .where(col(DeployRequest.id) == request_id, col(DeployRequest.state) == PENDING,
                       col(DeployRequest.plan_hash) != new_hash)
                .values(plan=plan, plan_hash=new_hash),
            )  # fmt: skip
            session.commit()
        return bool(changed)

    def decide(self, request: DeployRequest, user: str, decision: str) -> bool:
        """Record ``user``'s decision on the request's current plan; False if they had."""
        assert request.id is not None
        with Session(self.engine) as session:
            session.add(DeployApproval(request_id=request.id, user=user,
                                       plan_hash=request.plan_hash, decision=decision))  # fmt: skip
            try:
                session.commit()
            except IntegrityError:
                return False
        return True

    def approvals(self, request: DeployRequest) -> list[DeployApproval]:
        """The approvals that count: on the request's current plan, one per person."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(DeployApproval)
                .where(DeployApproval.request_id == request.id,
                       DeployApproval.plan_hash == request.plan_hash,
                       DeployApproval.decision == "approve")
                .order_by(col(DeployApproval.id))
            )  # fmt: skip
            return list(rows)

    def all_decisions(self, request_id: int) -> list[DeployApproval]:
        with Session(self.engine) as session:
            query = select(DeployApproval).where(DeployApproval.request_id == request_id)
            return list(session.exec(query.order_by(col(DeployApproval.id))))

    def expire_due(self) -> list[int]:
        """Pending requests past their expiry become expired (returns their ids)."""
        now = _now()
        with Session(self.engine) as session:
            due = session.exec(
                select(DeployRequest.id).where(
                    DeployRequest.state == PENDING, col(DeployRequest.expires_at) <= now
                )
            ).all()
        return [i for i in due if i is not None and self.move(i, PENDING, EXPIRED)]
