"""Where each model and environment's stable address sends requests (the local target).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_serving",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("env", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("served_name", sa.String(200), nullable=False),
        sa.Column("upstream", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_serving")
