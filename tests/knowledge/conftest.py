"""Fixtures for the knowledge tests: the shared runbooks indexed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.embedder import Embedder
from knowledge.index import RunbookIndex, build_index


@pytest.fixture(scope="session")
def shared_index_dir(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, shared_runbooks: Path
) -> Path:
    """The index over the 108 shared runbooks (data written outside this project)."""
    out = tmp_path_factory.mktemp("shared-index")
    build_index(shared_runbooks, out, embedder)
    return out


@pytest.fixture(scope="session")
def shared_index(shared_index_dir: Path, embedder: Embedder) -> RunbookIndex:
    return RunbookIndex(shared_index_dir, embedder)
