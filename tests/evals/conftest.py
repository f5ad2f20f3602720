"""Fixtures of the eval tests: an eval store on a throw-away SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import SQLModel

from bot.db import make_engine
from evals.store import EvalStore


@pytest.fixture
def store(tmp_path: Path) -> EvalStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'evals.sqlite'}")
    SQLModel.metadata.create_all(engine)
    return EvalStore(engine)
