from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge.lexical import LexicalIndex, identifier_parts, stemmed_parts, tokenize


def test_identifiers_split_into_parts_and_runs() -> None:
    assert identifier_parts("KubeAPIDown") == ["Kube", "API", "Down"]
    assert identifier_parts("kube-state-metrics") == ["kube", "state", "metrics"]
    tokens = tokenize("KubeAPIDown")
    assert {"kube", "api", "down"} <= set(tokens)
    assert {"kubeapi", "apidown", "kubeapidown"} <= set(tokens)
    assert "kubeapi" in tokenize("KubeAPI has disappeared")  # meets the alert's name


def test_words_are_stemmed_without_stop_words_or_bare_numbers() -> None:
    assert tokenize("The pods are crash-looping 42 times") == [
        "pod",
        "crash",
        "loop",
        "crashlooping",
        "time",
    ]


RUNBOOKS = [
    "Redis cache eviction. Raise maxmemory when keys are evicted.",
    "Pod crash looping. Read the previous container logs.",
    "Disk filling up. Find large files with du and clean up.",
]


def test_bm25_ranks_the_runbook_sharing_the_rare_terms_first(tmp_path: Path) -> None:
    index = LexicalIndex.build(RUNBOOKS)
    scores = index.scores("keys evicted from the redis cache")
    assert int(np.argmax(scores)) == 0 and scores[1] == 0
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert np.allclose(loaded.scores("crash loops"), index.scores("crash loops"))
    assert loaded.scores("quarterly sales tax").sum() == 0  # nothing in common


def test_stemmed_parts_leave_out_the_joined_runs() -> None:
    assert stemmed_parts("KubeAPIDown: Kube API Down") == ["kube", "api", "down"] * 2
    assert stemmed_parts("KubeletClientCertificateExpiration") == [
        "kubelet",
        "client",
        "certif",
        "expir",
    ]


def test_a_repeated_query_term_counts_once() -> None:
    """A summary that restates the description must not weigh its words twice."""
    index = LexicalIndex.build(RUNBOOKS)
    once = index.scores("redis cache evicted")
    assert np.allclose(index.scores("redis cache evicted. redis cache evicted redis"), once)
    assert np.allclose(index.scores_of(tokenize("redis cache evicted") * 3), once)
