"""Hybrid search on the shared runbooks: exact names, runbook URLs, evidence."""

from __future__ import annotations

import pytest

from knowledge.index import RunbookIndex

CRASH = "kubernetes/KubePodCrashLooping.md"
URL = "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"


@pytest.mark.parametrize(
    "query",
    [
        "KubePodCrashLooping fired: node-3 disk is full and etcd has no leader",
        "what does kube pod crash looping mean for the etcd members?",  # the title, verbatim
        f"etcd has no leader and the disk is full. runbook_url: {URL}",
    ],
)
def test_a_named_or_linked_runbook_comes_first(shared_index: RunbookIndex, query: str) -> None:
    hits = shared_index.search(query, k=3)
    assert hits[0].doc == CRASH and hits[0].exact and hits[0].score == 1.0
    assert not any(h.exact for h in hits[1:])


def test_without_the_name_the_text_decides(shared_index: RunbookIndex) -> None:
    hits = shared_index.search("etcd cluster has no leader", k=3)
    assert hits[0].doc == "etcd/etcdNoLeader.md" and not hits[0].exact
    assert hits[0].score > hits[1].score and 0 < hits[-1].score <= 1


@pytest.mark.parametrize(
    ("url", "doc"),
    [
        (URL, CRASH),
        (URL.upper() + "/", CRASH),
        (
            "https://runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader",
            "etcd/etcdNoLeader.md",
        ),
        ("node/NodeRAIDDegraded.md", "node/NodeRAIDDegraded.md"),
        ("https://runbooks.prometheus-operator.dev/runbooks/kubernetes/nosuchalert", None),
    ],
)
def test_runbook_urls_resolve_by_file_name(
    shared_index: RunbookIndex, url: str, doc: str | None
) -> None:
    assert shared_index.resolve_url(url) == doc


def test_hits_are_grouped_per_runbook_with_their_best_section(shared_index: RunbookIndex) -> None:
    hits = shared_index.search("how do I check the pod logs of a crash looping container", k=5)
    assert len({h.doc for h in hits}) == len(hits) == 5
    top = hits[0]
    assert top.doc == CRASH and top.section.endswith("Diagnosis") and "kubectl" in top.snippet
    assert top.dense > 0.2 and top.lexical > 0


def test_off_topic_queries_find_nothing(shared_index: RunbookIndex) -> None:
    assert shared_index.search("quarterly sales tax filing for Norway", k=5) == []
