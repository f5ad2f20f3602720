"""The FAISS side of the index: which index type a corpus gets, building it, searching it.

- ``flat``: ``IndexFlatIP``, exact inner product (cosine on normalised vectors). Searching
  every vector is cheap for small corpora and is the default.
- ``hnsw``: ``IndexHNSWFlat`` (approximate, graph based) once a corpus has more chunks than
  ``OPSBOT_INDEX_APPROX_ABOVE`` (default 50,000), where exact search starts to cost.

Both keep the vectors themselves, so a build can reuse the vectors of unchanged files and a
search can score any chunk exactly (``reconstruct``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)

IndexType = Literal["flat", "hnsw"]
#: Corpora with more chunks than this get an approximate (HNSW) index.
DEFAULT_APPROX_ABOVE = 50_000
#: HNSW graph degree and build/search beam widths, chosen by the sweep recorded in
#: bench/results/retrieval.json (``scale.hnsw_sweep``: 100,000 vectors shaped like the
#: runbooks' MiniLM chunk embeddings, queried by alert-query embeddings): the cheapest
#: setting (lowest single-query p50 at k=10, p50s within 0.05 ms counted equal, then fewest
#: distance computations, then build time) with recall@10 >= 0.95 against exact search.
#: There: recall@10 0.981 at k=10 and 0.997 at k=512, p50 about 0.2 ms at k=10 (flat:
#: about 15 ms), built in about 18 s on 2 cores, 181 MB. M=48 is as fast and larger; the
#: old efConstruction of 80 reached only 0.94 at k=10 with efSearch 128.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128


def choose_index_type(chunks: int, approx_above: int = DEFAULT_APPROX_ABOVE) -> IndexType:
    return "hnsw" if chunks > approx_above else "flat"


def build_vector_index(
    vectors: np.ndarray,
    index_type: IndexType,
    *,
    m: int | None = None,
    ef_construction: int | None = None,
) -> Any:
    """A CPU index over L2-normalised float32 ``vectors`` (inner product = cosine).

    ``m`` and ``ef_construction`` override ``HNSW_M`` and ``HNSW_EF_CONSTRUCTION`` (the
    benchmark's parameter sweep); an index the project builds uses the module's values.
    """
    dimension = vectors.shape[1]
    index: Any
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, m or HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction or HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def index_type_of(index: Any) -> IndexType:
    return "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"


def all_vectors(index: Any) -> np.ndarray:
    """Every stored vector, in order (to reuse them in a rebuild)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def gpu_available() -> bool:
    """True when this FAISS is the faiss-gpu build and sees at least one GPU."""
    return hasattr(faiss, "index_cpu_to_gpu") and faiss.get_num_gpus() > 0


def searcher(index: Any, *, use_gpu: bool | None = None) -> Any:
    """The index that answers searches: ``index`` itself, or a copy on the GPU.

    With faiss-gpu installed (``pip install 'opsbot[gpu]'``) and a GPU present
    (``faiss.get_num_gpus() > 0`` and ``hasattr(faiss, "index_cpu_to_gpu")``), search runs on
    GPU 0: a flat index is copied there with ``index_cpu_to_gpu``; FAISS has no GPU HNSW, so an
    HNSW index is searched there as an exact flat index over the same stored vectors (brute
    force on a GPU beats a CPU graph search at the sizes HNSW is chosen for). ``use_gpu``
    forces the choice; ``None`` decides by what is installed. The CPU index stays the one that
    is saved and reconstructed from.
    """
    if use_gpu is None:
        use_gpu = gpu_available()
    if not use_gpu:
        return index
    resources = faiss.StandardGpuResources()
    if isinstance(index, faiss.IndexHNSW):
        flat = faiss.IndexFlatIP(index.d)
        flat.add(all_vectors(index))
        index = flat
    log.info("searching %d vectors on the GPU", index.ntotal)
    return faiss.index_cpu_to_gpu(resources, 0, index)


def search(
    index: Any, vectors: np.ndarray, depth: int, *, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the ``depth`` nearest vectors; an HNSW beam is widened to fit.

    An HNSW index is searched with ``efSearch = max(HNSW_EF_SEARCH, depth)`` (``ef_search``
    overrides ``HNSW_EF_SEARCH``, for the benchmark's sweep).
    """
    params = None
    if isinstance(index, faiss.IndexHNSW):
        ef = max(ef_search or HNSW_EF_SEARCH, depth)
        params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
    queries = np.ascontiguousarray(vectors, dtype=np.float32)
    scores, ids = index.search(queries, depth, params=params)
    return scores, ids
