"""The built-in model registry (versions, what is live where) and deploy requests with
their approvals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("uri", sa.String(2000), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", TZ, nullable=False),
        sa.UniqueConstraint("model", "version"),
    )
    op.create_index("ix_model_version_model", "model_version", ["model"])
    op.create_table(
        "model_live",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("since", TZ, nullable=False),
    )
    op.create_table(
        "deploy_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("from_version", sa.String(100), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=False),
        sa.Column("card_ts", sa.String(32), nullable=False),
        sa.Column("thread_id", sa.String(128), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
    )
    op.create_index("ix_deploy_request_model", "deploy_request", ["model"])
    op.create_index("ix_deploy_request_state", "deploy_request", ["state"])
    op.create_table(
        "deploy_approval",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("deploy_request.id"), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint("request_id", "user", "plan_hash"),
    )
    op.create_index("ix_deploy_approval_request_id", "deploy_approval", ["request_id"])


def downgrade() -> None:
    for table in ("deploy_approval", "deploy_request", "model_live", "model_version"):
        op.drop_table(table)
