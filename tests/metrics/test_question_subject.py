"""Questions that name a system this Prometheus lacks are declined; typos are mended."""

from __future__ import annotations

import pytest

from knowledge.embedder import Embedder
from tools.metrics.discovery import Catalog, Family
from tools.metrics.question_subject import spelled, uncovered, unknown_subjects

CATALOG = Catalog(
    families=[
        Family("kafka_consumer_lag", "gauge", "Messages the consumer group is behind."),
        Family("node_memory_MemAvailable_bytes", "gauge", "Memory available."),
        Family("gpu_utilization_ratio", "gauge", "GPU busy share."),
        Family("llm_queue_requests", "gauge", "Requests waiting."),
        Family("llm_tokens_generated_total", "counter", "Tokens generated."),
        Family("kube_pod_container_status_restarts_total", "counter", "Restarts."),
        Family("scrape_samples_post_metric_relabeling", "gauge", "Samples kept."),
    ],
    labels={"llm-gateway": {"job": "llm-gateway"}, "payments": {"job": "payments"}},
)


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("rabbitmq queue depth for the orders queue?", ["rabbitmq", "orders"]),
        ("postgres replication lag", ["postgres", "replication"]),
        ("how much GPU memory (VRAM) is in use?", ["VRAM"]),
        ("consumer lag on payments", []),
        ("which pod is crash looping in kubernetes?", []),  # "kube" names kubernetes
        ("avg gpu util across the llm gateways", []),  # util abbreviates utilization
        ("how many reqs are queued rn, in msgs/sec", []),
        # a rare word that qualifies no measured thing is not a name
        ("free memory an hour from now? extrapolate from the last hour", []),
        # an everyday word the catalog lacks, right before a measured thing, says which one
        ("how many prompt tokens per second?", ["prompt"]),
        ("db connection pool utilisation for payments", ["pool"]),
        ("p99 query latency on payments", ["query"]),
        # but not a function word, a time unit, an adverb or the question's verb
        ("graph gpu utilization, every gateway, last hour", []),
        ("which pods actually restarted in the last 30 minutes", []),
        ("what fraction of requests are failing with server errors?", []),  # a "where" word
    ],
)
def test_names_the_catalog_lacks(question: str, unknown: list[str], embedder: Embedder) -> None:
    assert unknown_subjects(question, CATALOG, embedder.wordpieces) == unknown


def test_typos_of_catalog_words_are_mended(embedder: Embedder) -> None:
    fixed = spelled("avalable memory on worker-1, consumr lag", CATALOG, embedder.wordpieces)
    assert fixed == "available memory on worker-1, consumer lag"
    # two neighbouring letters swapped, which the similarity ratio rates low on short words
    assert spelled("checkout memroy", CATALOG, embedder.wordpieces) == "checkout memory"


def test_words_of_what_another_metric_measures_are_uncovered() -> None:
    gpu = CATALOG.get("gpu_utilization_ratio")
    lag = CATALOG.get("kafka_consumer_lag")
    assert gpu is not None and lag is not None
    assert uncovered("how much gpu memory is used on llm-gateway-0", CATALOG, gpu) == ["memori"]
    assert uncovered("gpu utilisation of the llm-gateway", CATALOG, gpu) == []
    # how ("total") and where ("pod", a label value) are not what is measured
    assert uncovered("total consumer lag per pod on payments", CATALOG, lag) == []
