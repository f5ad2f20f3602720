"""Runbook retrieval: quality on real alerts, query latency, incremental re-index, scale.

- Quality: the 60 kube-prometheus alerts (shared/data/alerts) against the 108 runbooks they
  link to (shared/data/runbooks). Each alert's summary and description, labels filled with
  stand-ins and its name left out (``knowledge.alerts.alert_query``), is a query; the runbook
  it links to is the answer. hit@1, hit@5 and MRR@10 for lexical-only, dense-only and hybrid
  search, with query latency (embedding included; p50 and p95 over ``LATENCY_PASSES`` passes
  over the queries, and each pass's p50). A last row adds the alert's name to the
  query: the exact-match tier should then be right every time.
- Incremental: a full build, an up-to-date check, and a rebuild after one file changed.
- Scale: FAISS flat against HNSW over 100,000 random unit vectors (MiniLM's 384 dimensions):
  build time, single-query latency, recall of HNSW against exact search.

Writes bench/results/retrieval.json and prints a table. Figures are for this machine.
"""

from __future__ import annotations

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

from knowledge.alerts import alert_query
from knowledge.embedder import get_embedder
from knowledge.index import DENSE_CANDIDATES, Mode, RunbookIndex, build_index
from knowledge.vectors import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
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
                ranks.append(docs.index(alert["runbook"]) + 1 if alert["runbook"] in docs else None)
        passes.append(seconds)
    every = [s for seconds in passes for s in seconds]
    n = len(ranks)
    return {
        "queries": n,
        "hit@1": round(sum(r == 1 for r in ranks) / n, 3),
        "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
        "mrr@10": round(sum(1 / r for r in ranks if r) / n, 3),
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


def scale(n: int = SCALE_CHUNKS, dimension: int = 384) -> dict[str, Any]:
    """Flat and HNSW over ``n`` random unit vectors: build time, query time, recall.

    Each query is a stored vector plus noise (cosine about 0.9 to it), as a real query is
    near its answer: ``top1_is_source`` is how often that vector comes first. Beyond it, the
    neighbours of a random vector are near-ties, so ``recall@10`` against exact search is a
    worst case for HNSW, lower than on real embeddings.
    """
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sources = rng.choice(n, SCALE_QUERIES, replace=False)
    noise = rng.standard_normal((SCALE_QUERIES, dimension), dtype=np.float32)
    queries = vectors[sources] + 0.5 * noise / np.sqrt(dimension)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    result: dict[str, Any] = {
        "chunks": n,
        "dimension": dimension,
        "queries": SCALE_QUERIES,
        "faiss_threads": faiss.omp_get_max_threads(),
        "gpu": gpu_available(),
    }
    exact: dict[int, np.ndarray] = {}
    for kind in ("flat", "hnsw"):
        start = time.perf_counter()
        index = build_vector_index(vectors, kind)
        row: dict[str, Any] = {"build_s": round(time.perf_counter() - start, 2)}
        for depth in (10, DENSE_CANDIDATES):
            seconds, found = [], []
            for q in queries:
                start = time.perf_counter()
                _, ids = vector_search(index, q.reshape(1, -1), depth)
                seconds.append(time.perf_counter() - start)
                found.append(ids[0][:10])
            top = np.asarray(found)
            exact.setdefault(depth, top)
            row[f"k{depth}"] = {
                "p50_ms": ms(seconds, 0.5),
                "p95_ms": ms(seconds, 0.95),
                "top1_is_source": round(float(np.mean(top[:, 0] == sources)), 4),
                "recall@10": round(
                    float(
                        np.mean(
                            [
                                len(set(a) & set(b)) / 10
                                for a, b in zip(top, exact[depth], strict=True)
                            ]
                        )
                    ),
                    4,
                ),
            }
        row["bytes"] = int(faiss.serialize_index(index).size)
        result[kind] = row
    result["hnsw"]["parameters"] = {
        "M": HNSW_M,
        "efConstruction": HNSW_EF_CONSTRUCTION,
        "efSearch": f"max({HNSW_EF_SEARCH}, k)",
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
    rows += [
        "",
        f"| {s['chunks']:,} chunks ({s['dimension']}d) | build s | p50 ms k=10 "
        f"| p50 ms k={DENSE_CANDIDATES} | top-1 found | recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("flat", "hnsw"):
        r = s[kind]
        big = r[f"k{DENSE_CANDIDATES}"]
        rows.append(
            f"| {kind} | {r['build_s']} | {r['k10']['p50_ms']} | {big['p50_ms']} "
            f"| {big['top1_is_source']} | {r['k10']['recall@10']} |"
        )
    return "\n".join(rows)


def main() -> None:
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
        results["scale"] = scale()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(json.dumps({k: results[k] for k in ("corpus", "incremental")}, indent=2))


if __name__ == "__main__":
    main()
