from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.alerts import alert_query
from knowledge.embedder import Embedder
from knowledge.index import (
    IndexMismatchError,
    IndexMissingError,
    Mode,
    RunbookIndex,
    build_index,
    plain_words,
    read_manifest,
)
from tests.conftest import SAMPLE_RUNBOOKS


@pytest.mark.parametrize(
    ("question", "doc"),
    [
        ("what should I check when pods crash-loop?", "kubernetes/PodCrashLooping.md"),
        ("p99 latency of checkout is too high", "services/HighP99Latency.md"),
        ("vLLM ran out of GPU memory, KV cache is full", "ml/VLLMGPUOutOfMemory.md"),
        (
            "how do I roll back a model deploy whose health check failed",
            "ml/ModelDeployHealthCheckFailed.md",
        ),
        (
            "too many connections to postgres from the app pool",
            "services/DatabaseConnectionPoolExhausted.md",
        ),
    ],
)
def test_sample_questions_find_their_runbook_first(
    sample_index: Path, embedder: Embedder, question: str, doc: str
) -> None:
    hits = RunbookIndex(sample_index, embedder).search(question, k=3)
    assert hits[0].doc == doc
    assert hits[0].score > hits[1].score
    assert len({h.doc for h in hits}) == 3  # grouped per document


def test_manifest_says_what_the_index_holds(sample_index: Path, embedder: Embedder) -> None:
    manifest = read_manifest(sample_index)
    assert manifest.model == embedder.name == "all-MiniLM-L6-v2"
    assert manifest.dimension == 384
    assert manifest.documents == len(
        [p for p in SAMPLE_RUNBOOKS.rglob("*.md") if p.stem != "README"]
    )
    assert manifest.chunks > manifest.documents
    assert len(manifest.corpus_hash) == 64


def test_hits_carry_section_and_snippet(sample_index: Path, embedder: Embedder) -> None:
    hit = RunbookIndex(sample_index, embedder).search("read the previous container's logs", k=1)[0]
    assert hit.doc == "kubernetes/PodCrashLooping.md"
    assert hit.section and hit.snippet
    assert hit.heading.startswith(hit.title)


def test_coverage_counts_the_words_not_the_names_an_alert_carries(
    sample_index: Path, embedder: Embedder
) -> None:
    alert = "pod billing/inv-0 in ns ml-training (10.0.6.9:9100) keeps crash-looping, restarts: 3"
    assert plain_words(alert) == "pod in ns keeps restarts"
    index = RunbookIndex(sample_index, embedder)
    asked = "pods crash looping, read the previous container logs"
    names = "checkout-7d9f8c6b5-x2k4p payments/ledger-api-5c7d9f worker-9.prod"
    bare = index.search(asked, k=1)[0]
    named = index.search(f"{asked}: {names}", k=1)[0]
    assert named.doc == bare.doc and named.coverage == bare.coverage


def test_unchanged_corpus_is_not_rebuilt_and_a_change_is(
    tmp_path: Path, embedder: Embedder
) -> None:
    src = tmp_path / "rb"
    src.mkdir()
    (src / "a.md").write_text("# Cache stale\n## Fix\nFlush the cache.")
    out = tmp_path / "idx"
    first, built = build_index(src, out, embedder)
    assert built
    again, built = build_index(src, out, embedder)
    assert not built and again == first
    (src / "b.md").write_text("# Queue backlog\n## Fix\nScale the consumers.")
    third, built = build_index(src, out, embedder)
    assert built and third.documents == 2
    assert RunbookIndex(out, embedder).search("consumers are behind", k=1)[0].doc == "b.md"


def test_missing_and_mismatched_indexes_say_what_to_do(
    tmp_path: Path, embedder: Embedder, sample_index: Path
) -> None:
    with pytest.raises(IndexMissingError, match="opsbot index"):
        RunbookIndex(tmp_path, embedder)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in sample_index.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"] = "other-model"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        RunbookIndex(copy, embedder)


def test_empty_query_returns_nothing(sample_index: Path, embedder: Embedder) -> None:
    assert RunbookIndex(sample_index, embedder).search("   ", k=3) == []


def test_shared_alerts_retrieve_their_runbook(
    shared_index: RunbookIndex, shared_alerts: list[dict[str, str]]
) -> None:
    """Behaviour on data written elsewhere: 108 runbooks, 60 real alerts (name left out).

    The ranking was chosen on these alerts (they are dev data), so the floor is broad: well
    below the measured hit@1 (bench/results/retrieval.json), with every runbook in the top 5.
    KubeAPIDown and KubeletDown were the hard ones: their text, "<component> has disappeared
    from Prometheus target discovery", is word for word the Meaning section of two sibling
    runbooks (KubeSchedulerDown, KubeControllerManagerDown); the name overlap ranking and
    distinct BM25 query terms bring them into the top 5.
    """
    ranks = []
    for alert in shared_alerts:
        docs = [h.doc for h in shared_index.search(alert_query(alert), k=5)]
        ranks.append(docs.index(alert["runbook"]) + 1 if alert["runbook"] in docs else None)
    misses = [a["alert"] for a, r in zip(shared_alerts, ranks, strict=True) if r is None]
    firsts = sum(r == 1 for r in ranks)
    assert len(ranks) == 60
    assert not misses, f"not in the top 5: {misses}"
    assert firsts >= 50, f"hit@1 {firsts / 60:.3f}"


def test_hybrid_beats_each_retriever_alone(
    shared_index: RunbookIndex, shared_alerts: list[dict[str, str]]
) -> None:
    def hit1(mode: Mode) -> float:
        firsts = [
            shared_index.search(alert_query(a), k=1, mode=mode)[0].doc == a["runbook"]
            for a in shared_alerts
        ]
        return sum(firsts) / len(firsts)

    hybrid = hit1("hybrid")
    assert hybrid > hit1("lexical") and hybrid > hit1("dense")


def test_context_steers_a_follow_up_while_the_query_leads(
    sample_index: Path, embedder: Embedder
) -> None:
    index = RunbookIndex(sample_index, embedder)
    topic = "what should I check when pods crash-loop?"
    assert index.search("and what about memory?", k=1, context=topic)[0].doc == (
        "kubernetes/PodOOMKilled.md"
    )
    assert index.search("and what then?", k=1, context="my pod was OOMKilled")[0].doc == (
        "kubernetes/PodOOMKilled.md"
    )
