"""The history of MLflow alias moves (MLflow keeps none): who moved which environment's
alias from which version to which, when and why.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_alias_move",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("from_version", sa.String(100), nullable=True),
        sa.Column("to_version", sa.String(100), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("why", sa.String(500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_model_alias_move_model", "model_alias_move", ["model"])


def downgrade() -> None:
    op.drop_index("ix_model_alias_move_model", "model_alias_move")
    op.drop_table("model_alias_move")
