"""A verification that waits for a person (Promote / Roll back), and the target's handles of
the old and new version kept on the request so that a later click can finish it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deploy_request") as batch:
        batch.add_column(sa.Column("verdict", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("handles", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("deploy_request") as batch:
        batch.drop_column("handles")
        batch.drop_column("verdict")
