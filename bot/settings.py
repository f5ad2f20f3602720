"""All of opsbot's settings, in one object nested per integration.

Every setting is an environment variable with the prefix ``OPSBOT_`` (or a line of a
``.env`` file in the working directory). Nested groups take one underscore:
``OPSBOT_SLACK_BOT_TOKEN`` is ``settings.slack.bot_token``, ``OPSBOT_LLM_URL`` is
``settings.llm.url``. With no settings at all the embedded defaults apply: SQLite and
the runbook index under the data directory, no Slack, no model (answers from evidence).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.embedder import DEFAULT_EMBEDDING_MODEL

PREFIX = "OPSBOT_"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
#: The alias `opsbot llm serve` gives the packaged Gemma 3 270M base model.
EMBEDDED_MODEL = "gemma-3-270m-base"


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


def _optional_http_url(value: str | None) -> str | None:
    """An unset URL stays None; a set one must be http(s) and loses its trailing slash."""
    if value in (None, ""):
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


#: The URL of an optional service (model server, Loki).
OptionalHttpUrl = Annotated[str | None, AfterValidator(_optional_http_url)]


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opsbot"


class SlackSettings(BaseModel):
    """The Slack app. Tokens come from the app's settings page (see deploy/README.md)."""

    bot_token: SecretStr | None = Field(None, description="Bot user OAuth token (xoxb-...).")
    signing_secret: SecretStr | None = Field(
        None, description="Signing secret; every HTTP request from Slack is checked with it."
    )
    app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-...); when set, `opsbot serve` uses Socket Mode."
    )
    api_url: str = Field(
        DEFAULT_SLACK_API_URL,
        description="Base URL of the Slack Web API; tests and proxies point it elsewhere.",
    )

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value


class LLMSettings(BaseModel):
    """The optional OpenAI-compatible model server (vLLM in production, llama.cpp on CPU)."""

    url: OptionalHttpUrl = Field(
        None, description="Base URL of an OpenAI-compatible API, e.g. http://vllm:8000/v1."
    )
    model: str = Field(EMBEDDED_MODEL, description="Model name the server serves.")
    api_key: SecretStr = Field(SecretStr("none"), description="API key for the model server.")
    assist: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Whether the model plans tool calls and writes summaries. auto: yes for any "
        "configured URL, except the embedded base model, which cannot follow instructions.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for one model response.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed model request.")
    max_tool_rounds: int = Field(3, ge=1, le=10, description="Planner rounds in one turn.")

    @property
    def assists(self) -> bool:
        """True when a configured model should plan and summarise."""
        if self.url is None or self.assist == "off":
            return False
        if self.assist == "on":
            return True
        return self.model != EMBEDDED_MODEL


class DatabaseSettings(BaseModel):
    """The store (audit log, conversations) and the agent's checkpoints."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///<data dir>/opsbot.sqlite. "
        "postgresql+psycopg://... switches the store and the checkpointer to Postgres.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("sqlite://", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql")
        return value


class IndexSettings(BaseModel):
    """The runbook index."""

    dir: Path | None = Field(None, description="Index folder; default <data dir>/index.")
    model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model: the packaged all-MiniLM-L6-v2 or a local path.",
    )
    top_k: int = Field(3, ge=1, le=20, description="Runbook hits quoted in an answer.")
    approx_above: int = Field(
        50_000,  # knowledge.vectors.DEFAULT_APPROX_ABOVE, kept free of the faiss import
        ge=1,
        description="Chunks above which the index is approximate (FAISS HNSW) instead of "
        "exact inner product; search is exact at or below it.",
    )


class LokiSettings(BaseModel):
    """An optional Grafana Loki to read logs from for RCA."""

    url: OptionalHttpUrl = Field(None, description="Base URL of Loki, e.g. http://loki:3100.")
    token: SecretStr | None = Field(None, description="Bearer token for Loki, if it needs one.")
    limit: int = Field(5000, ge=1, le=100_000, description="Most lines fetched per query.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for Loki.")


class _ServerAuth(BaseModel):
    """How to reach a server that may need credentials and its own TLS settings."""

    token: SecretStr | None = Field(None, description="Bearer token, if it needs one.")
    username: str | None = Field(None, description="Basic-auth user name, if it needs one.")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    verify_tls: bool = Field(True, description="Check the server's TLS certificate.")
    ca_file: Path | None = Field(None, description="CA bundle to check its certificate with.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for one answer.")


class PrometheusSettings(_ServerAuth):
    """The Prometheus that metric questions and alert triage query."""

    url: OptionalHttpUrl = Field(
        None, description="Base URL of Prometheus, e.g. http://prometheus:9090."
    )
    max_points: int = Field(
        1000,
        ge=10,
        le=11_000,
        description="Most points per series in a range query; a finer step is raised, with a note.",
    )
    max_range: str = Field(
        "7d", description="Longest range a query may cover (a Prometheus duration, e.g. 7d)."
    )
    max_series: int = Field(
        10, ge=1, le=50, description="Series drawn and listed; the rest are counted."
    )
    query_timeout: str = Field(
        "20s", description="Evaluation timeout passed to Prometheus with every query."
    )
    rate_limit: str = Field(
        "30/minute",
        description="Queries one person may run, e.g. 30/minute (the `limits` library's syntax).",
    )

    @field_validator("max_range", "query_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        from tools.metrics.durations import parse_duration

        parse_duration(value)
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must look like 30/minute or 5/second") from None
        return value


class AlertmanagerSettings(_ServerAuth):
    """An optional Alertmanager: `/ops alerts` reads firing alerts from it when it is set."""

    url: OptionalHttpUrl = Field(
        None, description="Base URL of Alertmanager, e.g. http://alertmanager:9093."
    )


class AlertsSettings(BaseModel):
    """Where Alertmanager's notifications open triage threads."""

    channel: str | None = Field(
        None, description="Channel id for triage threads when no route matches."
    )
    routes: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: "receiver=NAME" or "LABEL=VALUE" to a channel id, first match wins, '
        'e.g. {"receiver=payments":"C123","severity=critical":"C456"}.',
    )
    triage_interval: float = Field(
        1800.0,
        ge=0,
        description="Seconds after a triage during which repeated notifications of the same "
        "alert group are noted in its thread without a second triage.",
    )

    @field_validator("routes")
    @classmethod
    def _route_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            name, sep, wanted = key.partition("=")
            if not sep or not name.strip() or not wanted.strip():
                raise ValueError(f"route {key!r} must look like receiver=NAME or LABEL=VALUE")
        return value


class WebhookSettings(BaseModel):
    """The Alertmanager webhook (`POST /alertmanager`)."""

    token: SecretStr | None = Field(
        None, description="Bearer token the webhook requires; when unset it takes any caller."
    )
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest notification body accepted."
    )


class DeploySettings(BaseModel):
    """Model deploy and rollback requests: who approves them, how many, for how long."""

    approvers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="JSON: environment to Slack user ids (U…) and user-group ids (S…) who may "
        'approve, e.g. {"staging":["U123","S456"],"production":["S789"]}.',
    )
    approvals_required: dict[str, int] = Field(
        default_factory=dict,
        description="JSON: environment to how many distinct approvals a deploy needs "
        '(default 1), e.g. {"production":2}.',
    )
    default_env: str = Field("staging", description="Environment of a deploy that names none.")
    request_ttl: str = Field(
        "4h", description="How long a deploy request waits for its approvals (e.g. 30m, 4h)."
    )
    checks: Path | None = Field(
        None,
        description="YAML file of verification checks per model and environment (Argo "
        "Rollouts' analysis fields); without it a deploy is checked for health only.",
    )
    target: Literal["local", "kubernetes", "vllm-lora"] = Field(
        "local",
        description="Where approved deploys run: local (a llama.cpp or vLLM server per live "
        "version on this host, behind a stable address per model and environment), "
        "kubernetes (patch a Deployment's container and wait for its rollout) or vllm-lora "
        "(load the version as a LoRA adapter on a running vLLM).",
    )
    rollback: Literal["auto", "ask"] = Field(
        "auto",
        description="What a failed verification does: auto (switch back to the last good "
        "version at once) or ask (post a Roll back button; the approver policy applies).",
    )
    health_timeout: str = Field(
        "120s",
        description="How long a new version has to turn healthy (a Kubernetes rollout to "
        "finish) before the deploy fails and the old version keeps serving.",
    )
    vllm_url: str | None = Field(
        None,
        description="vllm-lora target: base URL of the running vLLM server the adapters are "
        "loaded on (started with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), e.g. "
        "http://vllm:8000.",
    )
    kubernetes_namespace: str = Field(
        "default", description="kubernetes target: namespace of the model Deployments."
    )
    kubernetes_deployment: str = Field(
        "{model}-{env}",
        description="kubernetes target: name of the Deployment serving a model in an "
        "environment ({model} and {env} are filled in).",
    )
    kubernetes_container: str | None = Field(
        None,
        description="kubernetes target: the container to patch (default: the Deployment's "
        "first container).",
    )
    kubernetes_address: str = Field(
        "http://{model}-{env}.{namespace}.svc:8000/v1",
        description="kubernetes target: the stable OpenAI-compatible address of a model in "
        "an environment (its Service).",
    )

    @field_validator("approvers")
    @classmethod
    def _ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for env, ids in value.items():
            bad = [i for i in ids if i[:1] not in ("U", "W", "S") or not i.isalnum()]
            if bad:
                raise ValueError(f"{env}: {bad[0]!r} is not a Slack user (U…) or group (S…) id")
        return value

    @field_validator("approvals_required")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        if any(n < 1 for n in value.values()):
            raise ValueError("every environment needs at least 1 approval")
        return value

    @field_validator("request_ttl", "health_timeout")
    @classmethod
    def _ttl(cls, value: str) -> str:
        from tools.metrics.durations import parse_duration

        parse_duration(value)
        return value

    def required(self, env: str) -> int:
        return self.approvals_required.get(env, 1)

    @property
    def ttl_seconds(self) -> float:
        from tools.metrics.durations import parse_duration

        return parse_duration(self.request_ttl)

    @property
    def health_timeout_seconds(self) -> float:
        from tools.metrics.durations import parse_duration

        return parse_duration(self.health_timeout)


class EvalsSettings(BaseModel):
    """Eval runs and their schedules."""

    timezone: str = Field(
        "UTC", description="Time zone of eval schedules' cron expressions (e.g. Europe/Berlin)."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. UTC, Europe/Berlin)") from None
        return value


class EvalJudgeSettings(BaseModel):
    """The judge model of the judged eval metrics (ragas faithfulness, relevancy, context
    precision): an OpenAI-compatible endpoint, the self-hosted vLLM in production. Without
    a URL, judged metrics read "not judged"."""

    judge_url: OptionalHttpUrl = Field(
        None, description="Base URL of the judge's OpenAI-compatible API, e.g. http://vllm:8000/v1."
    )
    judge_model: str = Field("", description="Model name the judge server serves.")
    judge_api_key: SecretStr = Field(SecretStr("none"), description="API key for the judge.")
    judge_timeout: float = Field(
        120.0, gt=0, description="Seconds for one judged metric of a case."
    )
    judge_concurrency: int = Field(4, ge=1, le=64, description="Judge requests at once.")
    judge_max_tokens: int = Field(
        2048, ge=256, le=32768,
        description="Tokens a judge answer may take (ragas' 1,024 cuts long JSON short).",
    )  # fmt: skip


class MlflowSettings(BaseModel):
    """The MLflow Model Registry, where ML teams already keep their model versions."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking server (e.g. http://mlflow:5000): when set, model "
        "versions are read from its Model Registry and a deploy moves the alias named after "
        "the environment; without it the bot's built-in registry is used.",
    )


class WorkersSettings(BaseModel):
    """The workers that take accepted work from the job queue."""

    triage: int = Field(
        2, ge=1, le=32, description="Alert triages worked on at once (a pool of their own)."
    )
    lease: float = Field(
        30.0,
        ge=0.5,
        le=600,
        description="Seconds a job stays claimed without its worker renewing it; after that "
        "(the process died) another worker takes it.",
    )
    shutdown_grace: float = Field(
        25.0,
        ge=0,
        le=3600,
        description="Seconds a stopping bot (SIGTERM) gives running jobs to finish; the "
        "rest go back to the queue.",
    )
    poll: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Seconds between looks at the queue for jobs recorded by other replicas.",
    )


class Settings(BaseSettings):
    """opsbot's settings; see each field's description."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the SQLite file, the index and model state live by default.",
    )
    port: int = Field(3000, ge=1, le=65535, description="Port of `opsbot serve`'s HTTP server.")
    host: str = Field("0.0.0.0", description="Address `opsbot serve` listens on.")
    max_concurrent_answers: int = Field(
        4,
        ge=1,
        le=64,
        description="Answers the workers of one replica work on at once; more wait in the "
        "job queue, so that acknowledging new requests stays fast under load.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    slack: SlackSettings = Field(default_factory=SlackSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    workers: WorkersSettings = Field(default_factory=WorkersSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    eval: EvalJudgeSettings = Field(default_factory=EvalJudgeSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    evals: EvalsSettings = Field(default_factory=EvalsSettings)

    @cached_property
    def index_dir(self) -> Path:
        return self.index.dir or self.data_dir / "index"

    @cached_property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'opsbot.sqlite'}"

    @cached_property
    def uploads_dir(self) -> Path:
        """Files attached to conversations (logs for RCA)."""
        return self.data_dir / "uploads"

    @cached_property
    def checkpoint_path(self) -> Path:
        """SQLite file of the agent's checkpoints (when the database is SQLite)."""
        return self.data_dir / "checkpoints.sqlite"

    def require_slack(self) -> None:
        """Refuse to serve Slack without what it needs, naming the variable."""
        missing = [
            f"{PREFIX}SLACK_{name.upper()}"
            for name in ("bot_token", "signing_secret")
            if getattr(self.slack, name) is None
        ]
        if missing:
            raise SettingsError(
                f"`opsbot serve` needs {' and '.join(missing)} (see deploy/README.md)"
            )


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error's location."""
    return PREFIX + "_".join(str(part) for part in loc if not isinstance(part, int)).upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; raise SettingsError with one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(f"{env_name(first['loc'])}: {first['msg']}") from None
