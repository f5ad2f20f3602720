"""The built-in model registry: versions of each model and what is live per environment.

A version records where its weights are (a local GGUF path, ``hf://…``, ``s3://…``,
``runs:/…``, ``models:/…``), the sha256 of a local file, its serving parameters (served
name, context length, quantisation, chat format, extra server arguments), who registered
it and when. Tables live in the bot's store (sqlmodel, migrated by Alembic).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, DateTime, Engine, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from tools.base import ToolError

if TYPE_CHECKING:
    from tools.deploy.mlflow_registry import MlflowRegistry

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
REMOTE_SCHEMES = ("hf://", "s3://", "gs://", "runs:/", "models:/", "http://", "https://")
#: Serving parameters a version may set (key=value on the command line).
PARAMS = {
    "served_name": str, "context_length": int, "quantisation": str, "chat_format": str,
    "args": str, "n_gpu_layers": int,
}  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=100, index=True)
    version: str = Field(max_length=100)
    uri: str = Field(max_length=2000)
    sha256: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    registered_by: str = Field(max_length=64)
    registered_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class ModelLive(SQLModel, table=True):
    """What serves each model in each environment now (moved by deploys and rollbacks)."""

    __tablename__ = "model_live"
    model: str = Field(primary_key=True, max_length=100)
    env: str = Field(primary_key=True, max_length=32)
    version: str = Field(max_length=100)
    since: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["context_length=4096", "served_name=summarizer"]`` → typed parameters."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in PARAMS:
            raise ToolError(
                f"{pair!r} is not a serving parameter; use key=value with one of "
                f"{', '.join(sorted(PARAMS))}"
            )
        try:
            params[key] = PARAMS[key](value.strip())
        except ValueError:
            raise ToolError(f"{key} must be a whole number, not {value!r}") from None
    return params


def check_names(model: str, version: str) -> None:
    """ToolError unless both are registry names (letters, digits, '.', '_', '-')."""
    for what, value in (("model", model), ("version", version)):
        if not NAME.match(value):
            raise ToolError(f"{what} {value!r}: letters, digits, '.', '_' or '-' only")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Registry:
    """The built-in registry on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(
        self, model: str, version: str, uri: str, *, params: dict[str, Any], by: str
    ) -> ModelVersion:
        check_names(model, version)
        sha256 = None
        if not uri.startswith(REMOTE_SCHEMES):
            path = Path(uri).expanduser()
            if not path.is_file():
                raise ToolError(f"{uri} is not a file here (nor an hf://, s3://, runs:/ URI)")
            uri, sha256 = str(path.resolve()), file_digest(path)
        row = ModelVersion(model=model, version=version, uri=uri, sha256=sha256,
                           params=params, registered_by=by)  # fmt: skip
        with Session(self.engine) as session:
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                raise ToolError(f"{model} {version} is registered already") from None
            session.refresh(row)
        return row

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        with Session(self.engine) as session:
            query = select(ModelVersion).order_by(col(ModelVersion.model), col(ModelVersion.id))
            if model:
                query = query.where(ModelVersion.model == model)
            return list(session.exec(query))

    def get(self, model: str, version: str) -> ModelVersion:
        with Session(self.engine) as session:
            row = session.exec(
                select(ModelVersion).where(
                    ModelVersion.model == model, ModelVersion.version == version
                )
            ).first()
        if row is None:
            known = [v.version for v in self.versions(model)]
            if not known:
                models = sorted({v.model for v in self.versions()})
                raise ToolError(
                    f"no model {model!r} is registered"
                    + (f"; known: {', '.join(models)}" if models else "")
                )
            raise ToolError(f"{model} has no version {version!r}; known: {', '.join(known)}")
        return row

    def live(self, model: str | None = None) -> list[ModelLive]:
        with Session(self.engine) as session:
            query = select(ModelLive).order_by(col(ModelLive.model), col(ModelLive.env))
            if model:
                query = query.where(ModelLive.model == model)
            return list(session.exec(query))

    def live_version(self, model: str, env: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(ModelLive, (model, env))
            return row.version if row else None

    def set_live(self, model: str, env: str, version: str, *, by: str = "opsbot",
                 why: str = "") -> None:  # fmt: skip
        """What serves now (who and why are in the deploy requests' history)."""
        with Session(self.engine) as session:
            row = session.get(ModelLive, (model, env)) or ModelLive(
                model=model, env=env, version=version
            )
            row.version, row.since = version, _now()
            session.add(row)
            session.commit()


def open_registry(tracking_uri: str | None, engine: Engine) -> Registry | MlflowRegistry:
    """MLflow's Model Registry when a tracking URI is set, else the built-in one."""
    if tracking_uri:
        from tools.deploy.mlflow_registry import MlflowRegistry

        return MlflowRegistry(tracking_uri, engine)
    return Registry(engine)
