"""Incremental builds, index types, and the ingest of plain text."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.settings import IndexSettings
from knowledge.documents import chunk_document, load_documents
from knowledge.embedder import Embedder
from knowledge.index import RunbookIndex, build_index, read_manifest
from knowledge.vectors import DEFAULT_APPROX_ABOVE, gpu_available, searcher


class CountingEmbedder(Embedder):
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:  # no super().__init__: reuse the loaded model
        self.name, self.dimension, self._inner = inner.name, inner.dimension, inner
        self.texts: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.texts.extend(texts)
        return self._inner.encode(texts, batch_size)


RUNBOOKS = {
    "cache.md": "# Redis cache eviction\n## Fix\nRaise maxmemory.\n## Check\nEvictions a second.",
    "queue.md": "# Queue backlog\n## Fix\nScale the consumers.",
    "disk.md": "---\ntitle: Disk filling up\nalerts: [NodeDiskFull]\n---\n## Fix\nClean up.",
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "rb"
    src.mkdir()
    for name, text in RUNBOOKS.items():
        (src / name).write_text(text)
    return src


def test_changing_one_file_embeds_only_that_file(
    source: Path, tmp_path: Path, embedder: Embedder
) -> None:
    counting = CountingEmbedder(embedder)
    out = tmp_path / "idx"
    first, _ = build_index(source, out, counting)
    assert first.embedded == first.chunks == len(counting.texts)
    assert set(first.doc_hashes) == set(RUNBOOKS)

    (source / "queue.md").write_text("# Queue backlog\n## Fix\nScale the consumers.\n## Why\nLag.")
    counting.texts.clear()
    second, built = build_index(source, out, counting)
    queue = next(d for d in load_documents(source) if d.path == "queue.md")
    assert built and second.embedded == len(counting.texts) == len(chunk_document(queue)) == 2
    assert all(text.startswith("Queue backlog") for text in counting.texts)
    assert second.doc_hashes["queue.md"] != first.doc_hashes["queue.md"]
    assert second.doc_hashes["cache.md"] == first.doc_hashes["cache.md"]

    # reused vectors are the ones a full rebuild computes
    index = RunbookIndex(out, embedder)
    assert index.search("keys are being evicted", k=1)[0].doc == "cache.md"
    assert index.search("consumer lag", k=1)[0].doc == "queue.md"

    (source / "disk.md").rename(source / "storage.md")  # a rename re-embeds nothing
    (source / "cache.md").unlink()
    counting.texts.clear()
    third, built = build_index(source, out, counting)
    assert built and third.embedded == 0 and counting.texts == []
    assert set(third.doc_hashes) == {"queue.md", "storage.md"}

    counting.texts.clear()
    forced, _ = build_index(source, out, counting, force=True)
    assert forced.embedded == forced.chunks == len(counting.texts)


def test_index_type_follows_the_size_setting(
    source: Path, tmp_path: Path, embedder: Embedder
) -> None:
    out = tmp_path / "idx"
    approx, _ = build_index(source, out, embedder, approx_above=2)
    assert approx.chunks > 2 and approx.index_type == "hnsw"
    index = RunbookIndex(out, embedder)
    assert index.index_type == "hnsw"
    assert isinstance(faiss.read_index(str(out / "index.faiss")), faiss.IndexHNSW)
    assert index.search("keys are being evicted", k=1)[0].doc == "cache.md"

    # the same corpus under the default threshold: exact again, without embedding anything
    exact, built = build_index(source, out, embedder)
    assert built and exact.index_type == "flat" and exact.embedded == 0
    assert read_manifest(out).index_type == "flat"
    assert build_index(source, out, embedder)[1] is False


def test_the_setting_defaults_to_the_index_default() -> None:
    assert IndexSettings().approx_above == DEFAULT_APPROX_ABOVE


def test_search_stays_on_the_cpu_without_faiss_gpu() -> None:
    flat = faiss.IndexFlatIP(4)
    assert searcher(flat, use_gpu=False) is flat
    if not gpu_available():  # CI: faiss-cpu, no GPU
        assert searcher(flat) is flat


def test_plain_text_runbooks_are_indexed(tmp_path: Path, embedder: Embedder) -> None:
    src = tmp_path / "rb"
    src.mkdir()
    (src / "restart-cache.txt").write_text(
        "Restart the cache when it serves stale entries.\n\nCheck the hit ratio first."
    )
    (src / "queue.md").write_text(RUNBOOKS["queue.md"])
    build_index(src, tmp_path / "idx", embedder)
    hit = RunbookIndex(tmp_path / "idx", embedder).search("cache serves stale data", k=1)[0]
    assert hit.doc == "restart-cache.txt" and "stale entries" in hit.text


def test_lexical_mode_needs_no_embedding(source: Path, tmp_path: Path, embedder: Embedder) -> None:
    build_index(source, tmp_path / "idx", embedder)
    counting = CountingEmbedder(embedder)
    index = RunbookIndex(tmp_path / "idx", counting)
    hits = index.search("maxmemory", k=2, mode="lexical")
    assert [h.doc for h in hits] == ["cache.md"] and counting.texts == []
    assert hits[0].section == "Fix" and hits[0].lexical > 0
    dense = index.search("memory limit of the key-value store", k=1, mode="dense")
    assert dense[0].doc == "cache.md" and dense[0].dense > 0.2


def test_urls_resolve_by_stem_folder_and_declared_alert(
    source: Path, tmp_path: Path, embedder: Embedder
) -> None:
    for folder in ("team-a", "team-b"):
        (source / folder).mkdir()
        (source / folder / "Cache.md").write_text(f"# Cache of {folder}\n## Fix\nFlush it.")
    build_index(source, tmp_path / "idx", embedder)
    index = RunbookIndex(tmp_path / "idx", embedder)
    assert index.resolve_url("https://runbooks.example.com/team-b/cache") == "team-b/Cache.md"
    assert index.resolve_url("https://runbooks.example.com/team-a/cache/") == "team-a/Cache.md"
    assert index.resolve_url("https://runbooks.example.com/x/nodediskfull") == "disk.md"
    assert index.resolve_url("https://runbooks.example.com/x/queue#fix") == "queue.md"
    assert index.resolve_url("https://runbooks.example.com/x/unknown") is None
    hit = index.search("see https://runbooks.example.com/x/NodeDiskFull for this", k=1)[0]
    assert hit.doc == "disk.md" and hit.exact


def test_a_query_encodes_like_a_batch(embedder: Embedder) -> None:
    """Few texts skip SentenceTransformer.encode's batching; the vectors are the same."""
    texts = ["kubelet has disappeared from target discovery", "pods crash-loop", "etcd leader"]
    batch = embedder.encode(texts * 4)  # 12 texts: encode's own path
    direct = embedder.encode(texts)
    assert direct.shape == (3, embedder.dimension) and direct.dtype == np.float32
    assert np.allclose(direct, batch[:3], atol=1e-5)
    assert np.allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-5)
