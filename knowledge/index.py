"""The runbook index: chunks, their embeddings in FAISS, and a manifest saying what it holds.

Files in an index folder:
- ``index.faiss``   exact inner-product index over L2-normalised chunk embeddings;
- ``chunks.jsonl``  one chunk a line, in index order;
- ``manifest.json`` model, dimension, corpus hash, counts, source folder, build time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from knowledge.documents import Chunk, chunk_document, corpus_hash, load_documents
from knowledge.embedder import Embedder, get_embedder

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


class IndexMissingError(Exception):
    """No index where one was expected."""


class IndexMismatchError(Exception):
    """The index was built with another embedding model or format."""


@dataclass(frozen=True)
class Manifest:
    format: int
    model: str
    dimension: int
    corpus_hash: str
    documents: int
    chunks: int
    source: str
    built_at: float


@dataclass(frozen=True)
class SearchHit:
    """A document that matches a query, with its best section."""

    doc: str
    title: str
    section: str
    score: float
    snippet: str
    text: str  # the whole section

    @property
    def heading(self) -> str:
        return f"{self.title} > {self.section}" if self.section else self.title


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path gives the section its context."""
    return f"{chunk.heading}\n{chunk.text}"


def current_manifest(out_dir: Path, corpus: str, model: str) -> Manifest | None:
    """The manifest of the index in ``out_dir`` if it holds ``corpus`` embedded by ``model``."""
    try:
        manifest = read_manifest(out_dir)
    except (IndexMissingError, TypeError, ValueError):
        return None
    same = (manifest.format, manifest.corpus_hash, manifest.model) == (
        FORMAT_VERSION,
        corpus,
        model,
    )
    return manifest if same and (out_dir / INDEX_FILE).exists() else None


def build_index(
    source: Path, out_dir: Path, embedder: Embedder | str, *, force: bool = False
) -> tuple[Manifest, bool]:
    """Load, chunk and embed every runbook under ``source``; write the index to ``out_dir``.

    ``embedder`` is a loaded model or a model name, loaded only when there is work to do.
    Returns the manifest and whether anything was built: an index that already holds the
    same corpus with the same model is kept unless ``force``.
    """
    documents = load_documents(source)
    if not documents:
        raise FileNotFoundError(f"no Markdown or text runbooks under {source}")
    name = embedder if isinstance(embedder, str) else embedder.name
    if not force and (existing := current_manifest(out_dir, corpus_hash(documents), name)):
        return existing, False
    if isinstance(embedder, str):
        embedder = get_embedder(embedder)
    chunks = [chunk for doc in documents for chunk in chunk_document(doc)]
    vectors = embedder.encode([embedding_text(c) for c in chunks])
    index = faiss.IndexFlatIP(embedder.dimension)
    index.add(vectors)
    manifest = Manifest(
        format=FORMAT_VERSION,
        model=embedder.name,
        dimension=embedder.dimension,
        corpus_hash=corpus_hash(documents),
        documents=len(documents),
        chunks=len(chunks),
        source=str(source.resolve()),
        built_at=time.time(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    # Write beside, then rename: a reader never sees half an index.
    faiss.write_index(index, str(out_dir / (INDEX_FILE + ".tmp")))
    with (out_dir / (CHUNKS_FILE + ".tmp")).open("w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(json.dumps(asdict(chunk)) + "\n")
    (out_dir / (MANIFEST_FILE + ".tmp")).write_text(json.dumps(asdict(manifest), indent=2))
    for name in (INDEX_FILE, CHUNKS_FILE, MANIFEST_FILE):
        (out_dir / (name + ".tmp")).replace(out_dir / name)
    return manifest, True


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST_FILE
    if not path.exists():
        raise IndexMissingError(
            f"no runbook index in {index_dir}: build one with `opsbot index PATH`"
        )
    return Manifest(**json.loads(path.read_text()))


class RunbookIndex:
    """A loaded index that answers queries with documents, best first."""

    def __init__(self, index_dir: Path, embedder: Embedder) -> None:
        self.manifest = read_manifest(index_dir)
        if self.manifest.format != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index in {index_dir} has format {self.manifest.format}; "
                "rebuild it with `opsbot index PATH`"
            )
        if self.manifest.model != embedder.name or self.manifest.dimension != embedder.dimension:
            raise IndexMismatchError(
                f"index in {index_dir} was built with {self.manifest.model} "
                f"({self.manifest.dimension}d), not {embedder.name}; rebuild it with `opsbot index`"
            )
        self.embedder = embedder
        self._index = faiss.read_index(str(index_dir / INDEX_FILE))
        with (index_dir / CHUNKS_FILE).open(encoding="utf-8") as fh:
            self.chunks = [Chunk(**json.loads(line)) for line in fh if line.strip()]
        if len(self.chunks) != self._index.ntotal:
            raise IndexMismatchError(f"index in {index_dir} is inconsistent; rebuild it")

    def search(
        self, query: str, k: int = 5, *, context: str | None = None, context_weight: float = 0.5
    ) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, each with its best-matching section.

        ``context`` (an earlier question of the conversation) steers a short follow-up: the
        query vector is blended with the context's, ``context_weight`` of it, and renormalised.
        """
        query = query.strip()
        if not query or k < 1:
            return []
        if context and context.strip():
            query_vec, context_vec = self.embedder.encode([query, context.strip()])
            blended = query_vec + context_weight * context_vec
            vector = (blended / np.linalg.norm(blended)).reshape(1, -1).astype(np.float32)
        else:
            vector = self.embedder.encode([query])
        depth = min(self._index.ntotal, max(k * 8, 32))
        scores, ids = self._index.search(vector, depth)
        hits: dict[str, SearchHit] = {}
        for score, idx in zip(scores[0], ids[0], strict=True):
            if idx < 0:
                continue
            chunk = self.chunks[int(idx)]
            if chunk.doc in hits:
                continue
            hits[chunk.doc] = SearchHit(
                doc=chunk.doc,
                title=chunk.title,
                section=chunk.section,
                score=round(float(score), 4),
                snippet=snippet(chunk.text),
                text=chunk.text,
            )
            if len(hits) == k:
                break
        return list(hits.values())


def snippet(text: str, limit: int = 600) -> str:
    """The start of a section, cut at a line end near ``limit`` characters."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    cut = cut if cut > limit // 2 else limit
    head = text[:cut].rstrip()
    if head.count("```") % 2:  # close a code block the cut left open
        head += "\n```"
    return head + "\n…"
