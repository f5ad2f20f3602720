"""The HNSW index the project builds above 50,000 chunks: its recall, and its search beam.

The recall test builds the index with the module's parameters over 20,000 vectors in 300
tight clusters (MiniLM's 384 dimensions; about 5 s on 2 cores). Its floor is broad: these
parameters find about all of the exact top 10 here, while a starved graph (M 8,
efConstruction 16, efSearch 16) finds about 0.7 of it and fails.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import pytest

from knowledge import vectors
from knowledge.vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    build_vector_index,
    search,
)

DIMENSION = 384
VECTORS = 20_000
CENTRES = 300
QUERIES = 200


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """``n`` unit vectors, each a random centre plus Gaussian noise (cosine about 0.9)."""
    picked = centres[rng.integers(len(centres), size=n)]
    noise = rng.standard_normal((n, DIMENSION), dtype=np.float32) * (0.5 / np.sqrt(DIMENSION))
    out = picked + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out, dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((CENTRES, DIMENSION), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return clustered(rng, centres, VECTORS), clustered(rng, centres, QUERIES)


@pytest.fixture(scope="module")
def hnsw(data: tuple[np.ndarray, np.ndarray]) -> Any:
    return build_vector_index(data[0], "hnsw")


def test_hnsw_is_built_with_the_module_parameters(hnsw: Any) -> None:
    assert isinstance(hnsw, faiss.IndexHNSWFlat)
    assert hnsw.hnsw.efConstruction == HNSW_EF_CONSTRUCTION
    assert hnsw.hnsw.nb_neighbors(1) == HNSW_M  # type: ignore[attr-defined]  # 2M at level 0


def test_hnsw_recall_at_10_against_exact_search(
    data: tuple[np.ndarray, np.ndarray], hnsw: Any
) -> None:
    stored, queries = data
    _, exact = search(build_vector_index(stored, "flat"), queries, 10)
    _, found = search(hnsw, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    # A broad floor: bench/results/retrieval.json measures about 0.98 at 100,000 vectors.
    assert recall >= 0.9


def test_search_widens_the_hnsw_beam_to_the_depth(
    data: tuple[np.ndarray, np.ndarray], hnsw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    beams: list[int] = []
    real = faiss.SearchParametersHNSW  # type: ignore[attr-defined]

    def spy(*, efSearch: int) -> Any:  # noqa: N803 (FAISS's keyword)
        beams.append(efSearch)
        return real(efSearch=efSearch)

    monkeypatch.setattr(vectors.faiss, "SearchParametersHNSW", spy)
    queries = data[1][:2]
    deep = HNSW_EF_SEARCH * 4
    _, shallow_ids = search(hnsw, queries, 10)
    _, deep_ids = search(hnsw, queries, deep)
    assert beams == [HNSW_EF_SEARCH, deep]
    assert shallow_ids.shape == (2, 10)
    assert deep_ids.shape == (2, deep) and (deep_ids >= 0).all()
