"""The MLflow Model Registry as the bot's registry (``OPSBOT_MLFLOW_TRACKING_URI``), because
that is where ML teams already keep their versions.

Versions are read with ``MlflowClient``; the bot's own version label, who registered it,
the file's sha256 and the serving parameters are model-version tags (``opsbot.*``), so a
version registered elsewhere still works under its MLflow number. What is live in an
environment is the registered model's alias named after it (``staging``, ``production``):
a deploy points the alias at the version and a rollback points it back. MLflow keeps no
history of aliases, so each move is recorded in the bot's store (``model_alias_move``: who
moved which alias from which version to which, when, why). A local file is logged as an
artifact of a run and registered as ``runs:/<run_id>/<file>`` (MLflow refuses a plain local
path as a version's source); remote URIs register as they are. Artifacts are fetched with
``mlflow.artifacts.download_artifacts``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Engine
from sqlmodel import Field, Session, SQLModel, col, select

from tools.base import ToolError
from tools.deploy.registry import (
    PARAMS,
    REMOTE_SCHEMES,
    ModelLive,
    ModelVersion,
    check_names,
    file_digest,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowVersion

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's client retries a failed request 7 times with backoff (minutes): a registry that is
# down should be said in the thread within seconds. An operator's own values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
TAG = "opsbot."
EXPERIMENT = "opsbot-model-registry"
#: URIs whose artifacts MLflow resolves (a local target downloads them before serving).
MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")


def _now() -> datetime:
    return datetime.now(UTC)


class ModelAliasMove(SQLModel, table=True):
    """One move of an environment's alias in MLflow (MLflow keeps no history of them)."""

    __tablename__ = "model_alias_move"
    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=100, index=True)
    alias: str = Field(max_length=32)
    from_version: str | None = Field(default=None, max_length=100)
    to_version: str = Field(max_length=100)
    by: str = Field(max_length=64)
    why: str = Field(default="", max_length=500)
    at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class MlflowRegistry:
    """The registry interface of ``tools.deploy.registry.Registry``, on an MLflow server."""

    def __init__(self, tracking_uri: str, engine: Engine) -> None:
        from mlflow import MlflowClient

        self.tracking_uri, self.engine = tracking_uri, engine
        self.client: MlflowClient = MlflowClient(tracking_uri=tracking_uri,
                                                 registry_uri=tracking_uri)  # fmt: skip

    # -- reading ---------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or (  # a missing alias says so
                exc.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc.message)
            ):
                return None
            raise ToolError(f"MLflow could not {what}: {str(exc.message)[:300]}") from None
        except OSError as exc:  # connection refused, DNS: the server is down
            raise ToolError(f"MLflow at {self.tracking_uri} did not answer "
                            f"({type(exc).__name__})") from None  # fmt: skip

    def _raw(self, model: str | None = None) -> list[MlflowVersion]:
        query = f"name = '{model}'" if model else ""
        found = self._call("list versions", self.client.search_model_versions, query)
        return sorted(found or [], key=lambda v: (v.name, int(v.version)))

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        return [_version(v) for v in self._raw(model)]

    def _find(self, model: str, version: str) -> MlflowVersion:
        raw = self._raw(model)
        for v in raw:
            if (v.tags or {}).get(f"{TAG}version") == version:
                return v
        for v in raw:
            if v.version == version.removeprefix("v") and f"{TAG}version" not in (v.tags or {}):
                return v
        if not raw:
            raise ToolError(f"no model {model!r} is registered in MLflow at {self.tracking_uri}")
        known = ", ".join(_label(v) for v in raw)
        raise ToolError(f"{model} has no version {version!r} in MLflow; known: {known}")

    def get(self, model: str, version: str) -> ModelVersion:
        return _version(self._find(model, version))

    def live(self, model: str | None = None) -> list[ModelLive]:
        names = [model] if model else sorted({v.name for v in self._raw()})
        rows: list[ModelLive] = []
        for name in names:
            registered = self._call("read the model", self.client.get_registered_model, name)
            aliases = getattr(registered, "aliases", None) or {}
            labels = {v.version: _label(v) for v in self._raw(name)}
            rows += [ModelLive(model=name, env=alias, version=labels.get(str(number), str(number)))
                     for alias, number in sorted(aliases.items())]  # fmt: skip
        return rows

    def live_version(self, model: str, env: str) -> str | None:
        found = self._call("read the alias", self.client.get_model_version_by_alias, model, env)
        return _label(found) if found is not None else None

    # -- writing ---------------------------------------------------------------------------
    def set_live(self, model: str, env: str, version: str, *, by: str = "opsbot",
                 why: str = "") -> None:  # fmt: skip
        """Point the alias named after ``env`` at ``version``, and record the move."""
        before = self.live_version(model, env)
        target = self._find(model, version)
        self._call("move the alias", self.client.set_registered_model_alias, model, env,
                   target.version)  # fmt: skip
        with Session(self.engine) as session:
            session.add(ModelAliasMove(model=model, alias=env, from_version=before,
                                       to_version=version, by=by, why=why[:500]))  # fmt: skip
            session.commit()

    def alias_history(self, model: str | None = None) -> list[ModelAliasMove]:
        with Session(self.engine) as session:
            query = select(ModelAliasMove).order_by(col(ModelAliasMove.id))
            if model:
                query = query.where(ModelAliasMove.model == model)
            return list(session.exec(query))

    def register(
        self, model: str, version: str, uri: str, *, params: dict[str, Any], by: str
    ) -> ModelVersion:
        check_names(model, version)
        if any((v.tags or {}).get(f"{TAG}version") == version for v in self._raw(model)):
            raise ToolError(f"{model} {version} is registered already")
        tags = {f"{TAG}version": version, f"{TAG}registered_by": by}
        tags |= {f"{TAG}param.{k}": str(v) for k, v in params.items()}
        run_id = None
        if not uri.startswith(REMOTE_SCHEMES + MLFLOW_SCHEMES):
            path = Path(uri).expanduser()
            if not path.is_file():
                raise ToolError(f"{uri} is not a file here (nor an hf://, s3://, runs:/ URI)")
            tags[f"{TAG}sha256"] = file_digest(path)
            run_id = self._log_artifact(model, version, path)
            uri = f"runs:/{run_id}/{path.name}"
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise ToolError(f"MLflow could not create {model}: {exc.message}") from None
        created = self._call("register the version", self.client.create_model_version, model,
                             uri, run_id=run_id, tags=tags)  # fmt: skip
        return _version(created)

    def _log_artifact(self, model: str, version: str, path: Path) -> str:
        """Log the file as an artifact of a run (the version's source must be one)."""
        experiment = self._call("read the experiment", self.client.get_experiment_by_name,
                                EXPERIMENT)  # fmt: skip
        experiment_id = (experiment.experiment_id if experiment is not None else
                         self._call("create the experiment", self.client.create_experiment,
                                    EXPERIMENT))  # fmt: skip
        run = self._call("start a run", self.client.create_run, experiment_id,
                         run_name=f"{model}-{version}")  # fmt: skip
        run_id = str(run.info.run_id)
        self._call("upload the file", self.client.log_artifact, run_id, str(path))
        self._call("end the run", self.client.set_terminated, run_id)
        return run_id


def fetch_artifact(tracking_uri: str, uri: str, dest: Path, sha256: str | None) -> Path:
    """Download a version's weights (``runs:/…``, ``models:/…``) into ``dest`` once; the file
    (or the one GGUF in a folder), checked against the registered sha256."""
    import mlflow.artifacts

    dest.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest),
                                                     tracking_uri=tracking_uri))  # fmt: skip
    if local.is_dir():
        files = sorted(local.rglob("*.gguf"))
        if len(files) != 1:
            raise ToolError(f"{uri} holds {len(files)} GGUF files; the local target needs one")
        local = files[0]
    if sha256 and file_digest(local) != sha256:
        raise ToolError(f"{uri} does not match its registered sha256 {sha256[:12]}…")
    return local


def _label(v: MlflowVersion) -> str:
    return str((v.tags or {}).get(f"{TAG}version") or v.version)


def _version(v: MlflowVersion) -> ModelVersion:
    tags = v.tags or {}
    params: dict[str, Any] = {}
    for key, kind in PARAMS.items():
        raw = tags.get(f"{TAG}param.{key}")
        if raw is not None:
            try:
                params[key] = kind(raw)
            except ValueError:
                continue
    created = datetime.fromtimestamp(int(v.creation_timestamp or 0) / 1000, UTC)
    return ModelVersion(
        model=v.name, version=_label(v), uri=str(v.source), sha256=tags.get(f"{TAG}sha256"),
        params=params,
        registered_by=tags.get(f"{TAG}registered_by") or str(v.user_id or "mlflow"),
        registered_at=created,
    )  # fmt: skip
