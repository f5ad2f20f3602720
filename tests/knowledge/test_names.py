from __future__ import annotations

from knowledge.documents import Document
from knowledge.lexical import tokenize
from knowledge.names import NameMatcher, NameOverlap, document_names


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


SIBLINGS = [
    ["KubeAPIDown", "Kube API Down"],
    ["KubeletDown", "Kubelet Down"],
    ["KubeSchedulerDown", "Kube Scheduler Down"],
    ["KubeletTooManyPods", "Kubelet Too Many Pods"],
    ["TargetDown", "Target Down"],
    ["PrometheusTargetSyncFailure", "Prometheus Target Sync Failure"],
    ["Watchdog"],
]


def overlap(query: str) -> dict[int, float]:
    return NameOverlap(SIBLINGS).scores(tokenize(query))


def test_name_overlap_ranks_the_runbooks_a_query_names_in_part() -> None:
    found = overlap("KubeAPI has disappeared from Prometheus discovery")
    assert max(found, key=found.__getitem__) == 0  # kube + api: most of KubeAPIDown's name
    assert found[0] > 2 * found.get(2, 0.0)  # "Kube" alone: little of KubeSchedulerDown
    found = overlap("Kubelet has disappeared")
    assert set(found) == {1}  # and not KubeletTooManyPods, a longer name
    assert overlap("the watchdog is silent") == {6: 1.0}


def test_name_overlap_needs_a_good_share_of_the_name() -> None:
    assert overlap("a target is down") == {4: 1.0}  # not the other "Down"s, nor "Target Sync"
    assert overlap("quarterly sales tax") == {}
    assert NameOverlap([]).scores(["kube"]) == {}
    assert NameOverlap(SIBLINGS, min_coverage=0.0).scores(["down"]).keys() == {0, 1, 2, 4}
