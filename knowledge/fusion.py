"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

Each retriever ranks the documents it has evidence for; a document's fused score is
``sum(1 / (RRF_K + rank))`` over the retrievers that ranked it. Ranks, not raw scores, are
fused, so BM25's unbounded scores and cosine similarities need no calibration. Equal scores
share a rank (1, 2, 2, 4), so the order of ties never decides a fused result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The constant from the paper; it damps the weight of the very first ranks.
RRF_K = 60


def competition_ranks(scores: Mapping[int, float]) -> dict[int, int]:
    """Rank 1 for the best score; equal scores share the better rank."""
    ranks: dict[int, int] = {}
    previous: float | None = None
    rank = 0
    for position, (key, score) in enumerate(sorted(scores.items(), key=lambda kv: -kv[1]), 1):
        if score != previous:
            rank, previous = position, score
        ranks[key] = rank
    return ranks


def reciprocal_rank_fusion(
    rankings: Sequence[Mapping[int, int]], k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> dict[int, float]:  # fmt: skip
    """Fused scores of every key ranked by any of ``rankings`` (key → rank, 1 is best),
    each list counted ``weights[i]`` times (1 each by default; 0 leaves a list out)."""
    fused: dict[int, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        if weight == 0:
            continue
        for key, rank in ranking.items():
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def best_possible(retrievers: int | Sequence[float], k: int = RRF_K) -> float:
    """The fused score of a document ranked first by every retriever (by their weights)."""
    total = retrievers if isinstance(retrievers, int) else sum(retrievers)
    return total / (k + 1)
