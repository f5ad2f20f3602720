"""Durable work: the job queue (whose dedup keys replace the seen-event table); per-person
rate budgets shared by all replicas.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("serial_key", sa.String(128), nullable=False),
        sa.Column("dedup_key", sa.String(128), nullable=True, unique=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("run_after", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
    )
    op.create_index("ix_job_claim", "job", ["queue", "state", "id"])
    op.create_index(
        "ux_job_running_serial_key",
        "job",
        ["serial_key"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_table(
        "rate_hit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_rate_hit_bucket_at", "rate_hit", ["bucket", "at"])
    op.drop_table("seen_event")  # retried deliveries are now jobs' dedup keys


def downgrade() -> None:
    op.create_table(
        "seen_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.drop_table("rate_hit")
    op.drop_table("job")
