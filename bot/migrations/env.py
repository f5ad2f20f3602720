"""Alembic's environment: runs migrations on the connection ``bot.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.deploys.requests  # noqa: F401
import bot.deploys.serving  # noqa: F401
import bot.store  # noqa: F401  (the tables, for autogenerate)
import bot.work.queue  # noqa: F401
import evals.schedule  # noqa: F401
import evals.store  # noqa: F401
import tools.deploy.mlflow_registry  # noqa: F401
import tools.deploy.registry  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `opsbot db upgrade` (bot.migrate.upgrade)")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
