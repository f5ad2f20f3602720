from __future__ import annotations

from knowledge.documents import Document
from knowledge.names import NameMatcher, document_names


def doc(path: str, title: str, **meta: object) -> Document:
    return Document(path=path, title=title, text="", meta=dict(meta))


def test_names_are_declared_alerts_multi_part_stems_and_titles() -> None:
    assert document_names(
        doc("k/PodCrashLooping.md", "Pod crash-looping", alerts=["KubePodCrashLooping"])
    ) == ["KubePodCrashLooping", "PodCrashLooping", "Pod crash-looping"]
    assert document_names(doc("cache.md", "Redis cache eviction", alert="RedisEvicting")) == [
        "RedisEvicting",
        "Redis cache eviction",
    ]
    # one plain word is too common to be a name
    assert document_names(doc("general/Watchdog.md", "Watchdog")) == []


def test_matcher_finds_alert_names_and_verbatim_titles() -> None:
    matcher = NameMatcher(
        [
            ["KubePodCrashLooping", "Kube Pod Crash Looping"],
            ["KubePodNotReady", "Kube Pod Not Ready"],
            ["Disk filling up"],
        ]
    )
    assert matcher.match("alert KubePodCrashLooping fired for checkout") == [0]
    assert matcher.match("kubepodnotready on payments") == [1]
    assert matcher.match("what does Kube Pod Not Ready mean?") == [1]
    assert matcher.match("the disk filling up on node-3, and KubePodCrashLooping") == [2, 0]
    assert matcher.match("pods are crash looping") == []
