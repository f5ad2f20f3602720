"""The store as it was before migrations: audit log, conversations, seen events, incidents.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store made before migrations (by create_all) is stamped here and upgraded; it may
    # lack tables that later versions added, so each is created only when missing.
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "audit_record" not in have:
        _audit_record()
    if "conversation" not in have:
        _conversation()
    if "seen_event" not in have:
        _seen_event()
    if "incident" not in have:
        _incident()


def _audit_record() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("text", sa.String(4000), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_audit_record_at", "audit_record", ["at"])


def _conversation() -> None:
    op.create_table(
        "conversation",
        sa.Column("thread_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
    )


def _seen_event() -> None:
    op.create_table(
        "seen_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_seen_event_at", "seen_event", ["at"])


def _incident() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_key", sa.String(1024), nullable=False),
        sa.Column("receiver", sa.String(256), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("triaged_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("incident", "seen_event", "conversation", "audit_record"):
        op.drop_table(table)
