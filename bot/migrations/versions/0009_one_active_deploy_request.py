"""One active deploy request per model and environment, kept by a partial unique index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ACTIVE_SQL = "state IN ('pending', 'approved', 'running', 'verifying')"


def upgrade() -> None:
    op.create_index(
        "uq_deploy_request_active", "deploy_request", ["model", "env"], unique=True,
        sqlite_where=sa.text(ACTIVE_SQL), postgresql_where=sa.text(ACTIVE_SQL),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_deploy_request_active", "deploy_request")
