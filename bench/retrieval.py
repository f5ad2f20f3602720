"""Runbook retrieval: quality on real alerts, query latency, incremental re-index, scale.

- Quality: the 60 kube-prometheus alerts (shared/data/alerts) against the 108 runbooks they
  link to (shared/data/runbooks). Each alert's summary and description, labels filled with
  stand-ins and its name left out (``knowledge.alerts.alert_query``), is a query; the runbook
  it links to is the answer. hit@1, hit@5 and MRR@10 for lexical-only, dense-only and hybrid
  search, with query latency (embedding included; p50 and p95 over ``LATENCY_PASSES`` passes
  over the queries, and each pass's p50). A last row adds the alert's name to the
  query: the exact-match tier should then be right every time.
- Incremental: a full build, an up-to-date check, and a rebuild after one file changed.
- Scale: FAISS flat against HNSW at 100,000 chunks: build time, index bytes and the C heap
  it holds, single-query latency (embedding excluded), recall@10 of HNSW against exact
  search, at k=10 and k=DENSE_CANDIDATES. The headline vectors are shaped like real ones:
  the shared runbooks' chunk embeddings replicated with Gaussian noise (norm 0.5: cosine
  about 0.89 to the source chunk), queried by the 60 real alert queries' embeddings with the
  same noise. A sweep of HNSW's M, efConstruction and efSearch over them chose
  knowledge.vectors' parameters (``hnsw_sweep``). Uniform random unit vectors are kept as a
  worst case (``--no-uniform`` skips it: its HNSW build takes minutes).

Writes bench/results/retrieval.json and prints a table. Figures are for this machine.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from evals.scorers.retrieval import rank_of, rank_summary
from knowledge.alerts import alert_query
from knowledge.build import embedding_text
from knowledge.documents import chunk_document, load_documents
from knowledge.embedder import get_embedder
from knowledge.index import DENSE_CANDIDATES, Mode, RunbookIndex, build_index
from knowledge.vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IndexType,
    build_vector_index,
    gpu_available,
)
from knowledge.vectors import search as vector_search

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RUNBOOKS = SHARED / "runbooks"
ALERTS = SHARED / "alerts" / "kube-prometheus-alerts.json"
OUT = ROOT / "bench" / "results" / "retrieval.json"
MODES: tuple[Mode, ...] = ("lexical", "dense", "hybrid")
SCALE_CHUNKS = 100_000
SCALE_QUERIES = 200
#: Passes over the 60 queries for the latency figures (p50 of every pass and of them all).
LATENCY_PASSES = 3
#: Norm of the Gaussian noise added to a unit vector to make a replica or a query
#: (per-dimension sigma NOISE / sqrt(384)): cosine to the source about 1 / sqrt(1 + 0.25).
NOISE = 0.5
#: Passes over the scale queries for the single-query latency figures.
TIMING_PASSES = 3
#: The HNSW parameters swept on the runbook-shaped vectors, and the recall@10 to reach.
SWEEP_M = (16, 32, 48)
SWEEP_EF_CONSTRUCTION = (80, 200)
SWEEP_EF_SEARCH = (64, 128, 256, 512)
RECALL_TARGET = 0.95
#: Single-query p50s this close (ms) count as the same speed when choosing.
P50_TIE_MS = 0.05


def ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def quality(
    index: RunbookIndex, alerts: list[dict[str, Any]], mode: Mode, with_name: bool = False
) -> dict[str, Any]:
    ranks: list[int | None] = []
    passes: list[list[float]] = []
    index.search("warm up", k=10, mode=mode)
    queries = [alert_query(a) for a in alerts]
    if with_name:
        queries = [f"{a['alert']}: {q}" for a, q in zip(alerts, queries, strict=True)]
    for done in range(LATENCY_PASSES):
        seconds: list[float] = []
        for alert, query in zip(alerts, queries, strict=True):
            start = time.perf_counter()
            hits = index.search(query, k=10, mode=mode)
            seconds.append(time.perf_counter() - start)
            if done == 0:
                docs = [h.doc for h in hits]
                ranks.append(rank_of(docs, alert["runbook"]))
        passes.append(seconds)
    every = [s for seconds in passes for s in seconds]
    n = len(ranks)
    return {
        "queries": n,
        **rank_summary(ranks),
        "p50_ms": ms(every, 0.5),
        "p95_ms": ms(every, 0.95),
        "p50_ms_per_pass": [ms(seconds, 0.5) for seconds in passes],
        "misses_at_1": [
            {"alert": a["alert"], "rank": r} for a, r in zip(alerts, ranks, strict=True) if r != 1
        ],
    }


def incremental(work: Path) -> dict[str, Any]:
    source = work / "runbooks"
    shutil.copytree(RUNBOOKS, source)
    out = work / "incremental-index"
    embedder = get_embedder()
    start = time.perf_counter()
    full, _ = build_index(source, out, embedder)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    _, built = build_index(source, out, embedder)
    unchanged_s = time.perf_counter() - start
    changed = source / "kubernetes" / "KubePodCrashLooping.md"
    changed.write_text(changed.read_text() + "\n## Escalation\n\nPage the owning team.\n")
    start = time.perf_counter()
    after, _ = build_index(source, out, embedder)
    one_file_s = time.perf_counter() - start
    return {
        "documents": full.documents,
        "chunks": full.chunks,
        "full_build_s": round(full_s, 2),
        "up_to_date_check_s": round(unchanged_s, 3),
        "rebuilt_when_unchanged": built,
        "one_file_changed_s": round(one_file_s, 2),
        "one_file_changed_embedded_chunks": after.embedded,
    }


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_bytes() -> int | None:
    """Bytes of C heap in use (glibc ``mallinfo2``: allocated chunks plus mmapped blocks),
    or None off glibc. Unlike RSS, it is not hidden by freed memory the allocator reuses
    (an index built after another was freed grows RSS by nothing)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def noisy(base: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``base[rows]`` plus isotropic Gaussian noise of norm about ``NOISE``, re-normalised."""
    dimension = base.shape[1]
    noise = rng.standard_normal((len(rows), dimension), dtype=np.float32)
    out = base[rows] + NOISE * noise / np.sqrt(dimension)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out, dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """p5, p50 and p95 of the row-wise cosine of two sets of unit vectors."""
    p5, p50, p95 = np.percentile(np.sum(a * b, axis=1), [5, 50, 95])
    return {"p5": round(float(p5), 3), "p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def realistic_vectors(
    n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``n`` chunk vectors and ``SCALE_QUERIES`` query vectors shaped like the real ones.

    The corpus: every chunk of the shared runbooks, cut and embedded as ``build_index``
    does (``chunk_document``, ``embedding_text``, the packaged all-MiniLM-L6-v2),
    replicated in turn to ``n`` vectors, each with its own Gaussian noise. The queries: the
    real alert queries (``alert_query``) embedded, taken in turn to ``SCALE_QUERIES``, each
    with its own noise of the same level. Queries are real alerts rather than held-apart
    chunks: they are what the index answers, and they sit where a query sits, not inside
    a cluster of replicas (an alert's nearest chunk is at cosine 0.5 to 0.9).
    """
    embedder = get_embedder()
    documents = load_documents(RUNBOOKS)
    chunks = [chunk for doc in documents for chunk in chunk_document(doc)]
    base = embedder.encode([embedding_text(chunk) for chunk in chunks])
    alerts = json.loads(ALERTS.read_text())
    asked = embedder.encode([alert_query(alert) for alert in alerts])
    sources = np.arange(n) % len(base)
    vectors = noisy(base, sources, rng)
    query_sources = np.arange(SCALE_QUERIES) % len(asked)
    queries = noisy(asked, query_sources, rng)
    nearest_chunk = (asked @ base.T).max(axis=1)
    info = {
        "corpus": (
            f"the {len(base)} chunks of the {len(documents)} shared runbooks "
            f"({embedder.name}), each replicated to about {n // len(base)} copies"
        ),
        "queries": (
            f"the {len(asked)} alert queries (knowledge.alerts.alert_query) embedded, "
            f"in turn to {SCALE_QUERIES}"
        ),
        "noise": (
            f"isotropic Gaussian, per-dimension sigma {NOISE}/sqrt({base.shape[1]}) "
            f"= {NOISE / np.sqrt(base.shape[1]):.4f} (norm about {NOISE}), then re-normalised"
        ),
        "noise_norm": NOISE,
        "noise_sigma_per_dimension": round(float(NOISE / np.sqrt(base.shape[1])), 5),
        "source_chunks": len(base),
        "replica_cosine_to_source": cosines(vectors, base[sources]),
        "query_cosine_to_alert": cosines(queries, asked[query_sources]),
        "alert_nearest_chunk_cosine": {
            "p5": round(float(np.percentile(nearest_chunk, 5)), 3),
            "p50": round(float(np.percentile(nearest_chunk, 50)), 3),
            "p95": round(float(np.percentile(nearest_chunk, 95)), 3),
        },
    }
    return vectors, queries, info


def uniform_vectors(
    n: int, dimension: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` uniform random unit vectors, and queries that are stored vectors plus noise."""
    vectors = rng.standard_normal((n, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sources = rng.choice(n, SCALE_QUERIES, replace=False)
    return vectors, noisy(vectors, sources, rng), sources


def timed_search(
    index: Any, queries: np.ndarray, depth: int, ef_search: int | None = None
) -> tuple[list[float], np.ndarray]:
    """Seconds per single query over ``TIMING_PASSES`` passes (after one warm-up query),
    and the top 10 ids of each query."""
    vector_search(index, queries[:1], depth, ef_search=ef_search)
    seconds: list[float] = []
    found: list[np.ndarray] = []
    for done in range(TIMING_PASSES):
        for q in queries:
            start = time.perf_counter()
            _, ids = vector_search(index, q.reshape(1, -1), depth, ef_search=ef_search)
            seconds.append(time.perf_counter() - start)
            if done == 0:
                found.append(ids[0][:10])
    return seconds, np.asarray(found)


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]
    return round(float(np.mean(overlap)), 4)


def depth_row(
    index: Any, queries: np.ndarray, depth: int, exact: np.ndarray, ef_search: int | None = None
) -> tuple[dict[str, Any], np.ndarray]:
    seconds, found = timed_search(index, queries, depth, ef_search)
    row = {
        "p50_ms": ms(seconds, 0.5),
        "p95_ms": ms(seconds, 0.95),
        "recall@10": recall_at_10(found, exact),
    }
    return row, found


def built(vectors: np.ndarray, kind: IndexType, **parameters: int) -> tuple[Any, dict[str, Any]]:
    """An index over ``vectors`` with its build time, its serialised size and the C heap it
    holds once built (``heap_bytes``: what the process keeps for it)."""
    gc.collect()
    before = heap_bytes()
    start = time.perf_counter()
    index = build_vector_index(vectors, kind, **parameters)
    build_s = time.perf_counter() - start
    after = heap_bytes()
    return index, {
        "build_s": round(build_s, 2),
        "bytes": int(faiss.serialize_index(index).size),
        "heap_bytes": after - before if after is not None and before is not None else None,
    }


def flat_and_hnsw(
    vectors: np.ndarray, queries: np.ndarray, sources: np.ndarray | None = None
) -> dict[str, Any]:
    """Flat (exact) and HNSW (the module's parameters) over ``vectors``: build, size,
    single-query latency and recall@10 against the flat results, at k=10 and k=512."""
    result: dict[str, Any] = {}
    exact: dict[int, np.ndarray] = {}
    for kind in ("flat", "hnsw"):
        index, row = built(vectors, kind)
        for depth in (10, DENSE_CANDIDATES):
            if kind == "flat":
                exact[depth] = vector_search(index, queries, depth)[1][:, :10]
            measured, found = depth_row(index, queries, depth, exact[depth])
            if sources is not None:
                measured["top1_is_source"] = round(float(np.mean(found[:, 0] == sources)), 4)
            row[f"k{depth}"] = measured
        result[kind] = row
        del index
    result["hnsw"]["parameters"] = {
        "M": HNSW_M,
        "efConstruction": HNSW_EF_CONSTRUCTION,
        "efSearch": f"max({HNSW_EF_SEARCH}, k)",
    }
    return result


def distances_per_query(index: Any, queries: np.ndarray, ef_search: int) -> float:
    """Vectors HNSW compares each query with at k=10 (``hnsw_stats.ndis``): the work a
    search does, counted rather than timed, so it is the same from run to run."""
    stats = faiss.cvar.hnsw_stats  # type: ignore[attr-defined]
    stats.reset()
    vector_search(index, queries, 10, ef_search=ef_search)
    return round(stats.ndis / len(queries), 1)


def choose(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The cheapest row with recall@10 >= RECALL_TARGET at k=10, and the rows as fast.

    Cheapest: the lowest k=10 p50; p50s within ``P50_TIE_MS`` of the lowest are one speed
    (single-query timings jitter that much between runs here), and among those the fewest
    distance computations per query wins, then the lowest build time.
    """
    good = [r for r in rows if r["k10"]["recall@10"] >= RECALL_TARGET]
    if not good:
        return None, []
    fastest = min(r["k10"]["p50_ms"] for r in good)
    tied = [r for r in good if r["k10"]["p50_ms"] <= fastest + P50_TIE_MS]
    tied.sort(key=lambda r: (r["k10"]["distances_per_query"], r["build_s"]))
    return tied[0], tied


def parameters_of(row: dict[str, Any]) -> dict[str, int]:
    return {key: int(row[key]) for key in ("M", "efConstruction", "efSearch")}


def hnsw_sweep(vectors: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """Every (M, efConstruction, efSearch) of the sweep over ``vectors``, and the one
    ``choose`` picks (knowledge.vectors' parameters).

    At k=512 the beam is ``max(efSearch, 512)`` = 512 for every efSearch swept, so the k=512
    figures are measured once per graph and repeated in its rows.
    """
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    exact = {depth: flat.search(queries, depth)[1][:, :10] for depth in (10, DENSE_CANDIDATES)}
    del flat
    rows: list[dict[str, Any]] = []
    for m in SWEEP_M:
        for ef_construction in SWEEP_EF_CONSTRUCTION:
            index, graph = built(vectors, "hnsw", m=m, ef_construction=ef_construction)
            deep, _ = depth_row(index, queries, DENSE_CANDIDATES, exact[DENSE_CANDIDATES])
            for ef_search in SWEEP_EF_SEARCH:
                k10, _ = depth_row(index, queries, 10, exact[10], ef_search)
                k10["distances_per_query"] = distances_per_query(index, queries, ef_search)
                rows.append(
                    {
                        "M": m,
                        "efConstruction": ef_construction,
                        "efSearch": ef_search,
                        **graph,
                        "k10": k10,
                        f"k{DENSE_CANDIDATES}": deep,
                    }
                )
            print(
                f"M={m} efConstruction={ef_construction}: build {graph['build_s']} s, "
                + ", ".join(
                    f"ef {r['efSearch']} recall {r['k10']['recall@10']} p50 {r['k10']['p50_ms']}"
                    for r in rows[-len(SWEEP_EF_SEARCH) :]
                ),
                flush=True,
            )
            del index
    chosen, tied = choose(rows)
    choice = parameters_of(chosen) if chosen else None
    module = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    return {
        "criterion": (
            f"recall@10 >= {RECALL_TARGET} at k=10; then the lowest k=10 p50 ms, p50s within "
            f"{P50_TIE_MS} ms of it counted equal; among those the fewest distances per query, "
            "then the lowest build s"
        ),
        "recall_target": RECALL_TARGET,
        "p50_tie_ms": P50_TIE_MS,
        "chosen": choice,
        "chosen_row": chosen,
        "as_fast": [parameters_of(r) for r in tied],
        "module_parameters": module,
        "module_matches_chosen": choice == module,
        "rows": rows,
    }


def scale(n: int = SCALE_CHUNKS, uniform: bool = True) -> dict[str, Any]:
    """Flat against HNSW at ``n`` chunks: build time, size, query time, recall.

    Headline (``flat``, ``hnsw``, ``hnsw_sweep``): vectors shaped like real ones (see
    ``realistic_vectors``): the shared runbooks' chunk embeddings replicated to ``n`` with
    Gaussian noise of norm ``NOISE`` = 0.5 (a replica's cosine to its chunk about 0.89), and
    200 real alert-query embeddings with the same noise as queries. ``recall@10`` is HNSW's
    top 10 against exact (flat) search; latency is one query at a time, embedding excluded.

    ``uniform_worst_case``: the same over ``n`` uniform random unit vectors, with queries
    that are stored vectors plus the same noise (``top1_is_source``: how often that vector
    comes first). The neighbours of a random vector are near-ties, so its recall is a worst
    case for HNSW, far below real embeddings'.
    """
    rng = np.random.default_rng(0)
    vectors, queries, info = realistic_vectors(n, rng)
    result: dict[str, Any] = {
        "chunks": n,
        "dimension": int(vectors.shape[1]),
        "queries": SCALE_QUERIES,
        "timing_passes": TIMING_PASSES,
        "faiss_threads": faiss.omp_get_max_threads(),
        "gpu": gpu_available(),
        "vectors": info,
    }
    result["hnsw_sweep"] = hnsw_sweep(vectors, queries)
    result.update(flat_and_hnsw(vectors, queries))
    del vectors, queries
    if uniform:
        vectors, queries, sources = uniform_vectors(n, int(result["dimension"]), rng)
        result["uniform_worst_case"] = {
            "vectors": f"{n:,} uniform random unit vectors; queries are 200 of them plus noise",
            **flat_and_hnsw(vectors, queries, sources),
        }
    return result


def table(results: dict[str, Any]) -> str:
    rows = ["| retrieval | hit@1 | hit@5 | MRR@10 | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for name, r in results["quality"].items():
        rows.append(
            f"| {name} | {r['hit@1']:.3f} | {r['hit@5']:.3f} | {r['mrr@10']:.3f} "
            f"| {r['p50_ms']} | {r['p95_ms']} |"
        )
    s = results["scale"]
    deep = f"k{DENSE_CANDIDATES}"
    rows += [
        "",
        f"| {s['chunks']:,} chunks ({s['dimension']}d) | build s | MB | p50 ms k=10 "
        f"| p50 ms k={DENSE_CANDIDATES} | recall@10 k=10 | recall@10 k={DENSE_CANDIDATES} |",
        "|---|---|---|---|---|---|---|",
    ]
    cases = [("runbook-shaped", s)]
    if "uniform_worst_case" in s:
        cases.append(("uniform (worst case)", s["uniform_worst_case"]))
    for label, case in cases:
        for kind in ("flat", "hnsw"):
            r = case[kind]
            rows.append(
                f"| {label} {kind} | {r['build_s']} | {r['bytes'] / 1e6:.1f} "
                f"| {r['k10']['p50_ms']} | {r[deep]['p50_ms']} "
                f"| {r['k10']['recall@10']} | {r[deep]['recall@10']} |"
            )
    sweep = s["hnsw_sweep"]
    rows += [
        "",
        f"HNSW sweep (runbook-shaped), chosen: {sweep['chosen']}, as fast: {sweep['as_fast']}",
        f"| M | efC | efSearch | recall@10 k=10 | p50 ms | p95 ms | distances/query "
        f"| build s | MB | recall@10 k={DENSE_CANDIDATES} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sweep["rows"]:
        rows.append(
            f"| {r['M']} | {r['efConstruction']} | {r['efSearch']} | {r['k10']['recall@10']} "
            f"| {r['k10']['p50_ms']} | {r['k10']['p95_ms']} | {r['k10']['distances_per_query']} "
            f"| {r['build_s']} | {r['bytes'] / 1e6:.1f} | {r[deep]['recall@10']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--no-uniform",
        action="store_true",
        help="skip the uniform-random worst case at scale (its HNSW build takes minutes)",
    )
    args = parser.parse_args()
    alerts = json.loads(ALERTS.read_text())
    work = Path(tempfile.mkdtemp(prefix="opsbot-retrieval-"))
    try:
        embedder = get_embedder()
        start = time.perf_counter()
        manifest, _ = build_index(RUNBOOKS, work / "index", embedder)
        build_s = time.perf_counter() - start
        index = RunbookIndex(work / "index", embedder)
        results: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "corpus": {
                "documents": manifest.documents,
                "chunks": manifest.chunks,
                "index_type": manifest.index_type,
                "build_s": round(build_s, 2),
            },
            "quality": {f"{mode}-only" if mode != "hybrid" else mode: {} for mode in MODES},
        }
        for mode in MODES:
            name = f"{mode}-only" if mode != "hybrid" else mode
            results["quality"][name] = quality(index, alerts, mode)
        results["quality"]["hybrid, alert name in query"] = quality(
            index, alerts, "hybrid", with_name=True
        )
        results["incremental"] = incremental(work)
        results["scale"] = scale(uniform=not args.no_uniform)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(json.dumps({k: results[k] for k in ("corpus", "incremental")}, indent=2))


if __name__ == "__main__":
    main()
