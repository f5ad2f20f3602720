"""Eval runs in the bot's store (sqlmodel, migrated by Alembic): the run, with what it ran
on, its aggregates and its status; and one row per case with its output, scores and
outcome, so that baselines compare case by case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Engine, update
from sqlmodel import Field, Session, SQLModel, col, select

OUTCOMES = ("pass", "fail", "known_fail", "judge_error", "error", "skipped")


def _now() -> datetime:
    return datetime.now(UTC)


class EvalRun(SQLModel, table=True):
    __tablename__ = "eval_run"
    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(max_length=64, index=True)
    split: str = Field(max_length=16)
    status: str = Field(
        default="running", max_length=16,
        description="running, passed, failed, regressed, invalid, error",
    )  # fmt: skip
    model: str = Field(default="", max_length=300, description="the agent's or served model")
    judge: str = Field(default="", max_length=300)
    git_rev: str = Field(default="", max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    metrics: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False),
        description="per metric: value, threshold, passed, status",
    )  # fmt: skip
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    comparison: dict[str, Any] = Field(default_factory=dict,
                                       sa_column=Column(JSON, nullable=False))  # fmt: skip
    baseline_of: bool = Field(default=False, description="the suite's baseline for this split")
    repeat: int = 1
    requested_by: str = Field(default="", max_length=64)
    started_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    duration_s: float = 0.0
    error: str = Field(default="", max_length=2000)


class EvalCase(SQLModel, table=True):
    __tablename__ = "eval_case"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_run.id", index=True)
    case_id: str = Field(max_length=128)
    attempt: int = 0
    outcome: str = Field(max_length=16)
    scores: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    output: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seconds: float = 0.0


class EvalStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, row: SQLModel) -> Any:
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
        return row

    def add_cases(self, rows: list[EvalCase]) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add_all(rows)
            session.commit()

    def update(self, run_id: int, **values: Any) -> None:
        with Session(self.engine) as session:
            session.execute(update(EvalRun).where(col(EvalRun.id) == run_id).values(**values))
            session.commit()

    def get(self, run_id: int) -> EvalRun | None:
        with Session(self.engine) as session:
            return session.get(EvalRun, run_id)

    def runs(self, suite: str | None = None, limit: int = 50) -> list[EvalRun]:
        with Session(self.engine) as session:
            query = select(EvalRun).order_by(col(EvalRun.id).desc()).limit(limit)
            if suite:
                query = query.where(EvalRun.suite == suite)
            return list(session.exec(query))

    def cases(self, run_id: int) -> list[EvalCase]:
        with Session(self.engine) as session:
            query = select(EvalCase).where(EvalCase.run_id == run_id)
            return list(session.exec(query.order_by(col(EvalCase.id))))

    def baseline(self, suite: str, split: str) -> EvalRun | None:
        with Session(self.engine) as session:
            query = select(EvalRun).where(EvalRun.suite == suite, EvalRun.split == split,
                                          col(EvalRun.baseline_of).is_(True))  # fmt: skip
            return session.exec(query.order_by(col(EvalRun.id).desc())).first()

    def mark_baseline(self, run_id: int) -> EvalRun:
        run = self.get(run_id)
        if run is None:
            raise LookupError(f"no eval run #{run_id}")
        with Session(self.engine) as session:
            session.execute(update(EvalRun).where(col(EvalRun.suite) == run.suite,
                                                  col(EvalRun.split) == run.split)
                            .values(baseline_of=False))  # fmt: skip
            session.execute(update(EvalRun).where(col(EvalRun.id) == run_id)
                            .values(baseline_of=True))  # fmt: skip
            session.commit()
        run.baseline_of = True
        return run
