"""Shared fixtures: the project's sample runbooks, the shared test data, a built index,
settings isolated in a temporary data folder."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from knowledge.embedder import Embedder, get_embedder
from knowledge.index import build_index

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RUNBOOKS = ROOT / "knowledge" / "runbooks"
SHARED_DATA = ROOT.parent / "shared" / "data"
OPSBOT_ENV = re.compile(r"^OPSBOT_")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's OPSBOT_* variables or .env file."""
    import os

    for name in list(os.environ):
        if OPSBOT_ENV.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The index over the project's own sample runbooks, built once per session."""
    out = tmp_path_factory.mktemp("index")
    build_index(SAMPLE_RUNBOOKS, out, embedder)
    return out


@pytest.fixture
def settings(tmp_path: Path, sample_index: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", index={"dir": sample_index})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def shared_runbooks() -> Path:
    path = SHARED_DATA / "runbooks"
    if not path.is_dir():
        pytest.skip(f"shared test data missing at {path}")
    return path


@pytest.fixture(scope="session")
def shared_alerts() -> list[dict[str, str]]:
    path = SHARED_DATA / "alerts" / "kube-prometheus-alerts.json"
    if not path.exists():
        pytest.skip(f"shared test data missing at {path}")
    return json.loads(path.read_text())


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (skips, loudly, where none is installed)."""
    from tests.postgres import pg_bin, postgres_server

    if pg_bin() is None:
        pytest.skip(
            "PostgreSQL is not installed: run `make test` as root, or apt-get install postgresql"
        )
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_database(postgres_url: str) -> str:
    """A database of its own for one test, on the session's PostgreSQL server."""
    from tests.postgres import fresh_database

    return fresh_database(postgres_url)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL: SQLite, then a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("pg_database"))
