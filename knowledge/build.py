"""Building the index: load, chunk, embed what changed, write (see ``knowledge.storage``).

A rebuild embeds only the runbooks whose content hash is new: the vectors of the others are
taken from the previous index in the same folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path, PurePosixPath

import numpy as np

from knowledge.documents import Chunk, Document, chunk_document, corpus_hash, load_documents
from knowledge.embedder import Embedder, get_embedder
from knowledge.lexical import LexicalIndex
from knowledge.names import alert_names, document_names
from knowledge.storage import (
    FORMAT_VERSION,
    DocumentEntry,
    Manifest,
    current_manifest,
    previous_vectors,
    write_index,
)
from knowledge.vectors import DEFAULT_APPROX_ABOVE, build_vector_index, choose_index_type

log = logging.getLogger(__name__)


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path gives the section its context."""
    return f"{chunk.heading}\n{chunk.text}"


def lexical_text(doc: Document) -> str:
    """What BM25 indexes for a runbook: title, file stem, alert names, tags, body."""
    tags = doc.meta.get("tags")
    tag_text = " ".join(map(str, tags)) if isinstance(tags, list) else str(tags or "")
    head = [doc.title, PurePosixPath(doc.path).stem, *alert_names(doc), tag_text]
    return "\n".join([*(part for part in head if part), doc.text])


def build_index(
    source: Path,
    out_dir: Path,
    embedder: Embedder | str,
    *,
    force: bool = False,
    approx_above: int = DEFAULT_APPROX_ABOVE,
) -> tuple[Manifest, bool]:
    """Load, chunk and embed every runbook under ``source``; write the index to ``out_dir``.

    ``embedder`` is a loaded model or a model name, loaded only when there is work to do.
    Returns the manifest and whether anything was built: an index that already holds the
    same corpus with the same model (and the index type ``approx_above`` asks for) is kept
    unless ``force``. Otherwise only runbooks whose content changed are embedded; ``force``
    embeds everything again.
    """
    documents = load_documents(source)
    if not documents:
        raise FileNotFoundError(f"no Markdown or text runbooks under {source}")
    name = embedder if isinstance(embedder, str) else embedder.name
    corpus = corpus_hash(documents)
    if not force and (existing := current_manifest(out_dir, corpus, name, approx_above)):
        return existing, False
    chunks_per_doc = [chunk_document(doc) for doc in documents]
    reusable = {} if force else previous_vectors(out_dir, name)
    todo = [
        chunk
        for doc, chunks in zip(documents, chunks_per_doc, strict=True)
        if doc.sha256 not in reusable
        for chunk in chunks
    ]
    model = None if isinstance(embedder, str) else embedder
    if model is None and (todo or not reusable):
        model = get_embedder(name)
    fresh = model.encode([embedding_text(c) for c in todo]) if model and todo else None
    dimension = model.dimension if model else _reused_dimension(reusable)
    parts: list[np.ndarray] = []
    entries: list[DocumentEntry] = []
    offset = taken = 0
    for doc, doc_chunks in zip(documents, chunks_per_doc, strict=True):
        if doc.sha256 in reusable:
            parts.append(reusable[doc.sha256])
        elif fresh is not None:
            parts.append(fresh[taken : taken + len(doc_chunks)])
            taken += len(doc_chunks)
        entries.append(
            DocumentEntry(
                path=doc.path,
                title=doc.title,
                sha256=doc.sha256,
                names=document_names(doc),
                first=offset,
                count=len(doc_chunks),
            )
        )
        offset += len(doc_chunks)
    vectors = np.concatenate([np.zeros((0, dimension)), *(p.reshape(-1, dimension) for p in parts)])
    chunks = [chunk for doc_chunks in chunks_per_doc for chunk in doc_chunks]
    index_type = choose_index_type(len(chunks), approx_above)
    manifest = Manifest(
        format=FORMAT_VERSION,
        model=name,
        dimension=dimension,
        corpus_hash=corpus,
        documents=len(documents),
        chunks=len(chunks),
        source=str(source.resolve()),
        built_at=time.time(),
        index_type=index_type,
        embedded=len(todo),
        doc_hashes={doc.path: doc.sha256 for doc in documents},
    )
    log.info("embedded %d of %d chunks (%s index)", len(todo), len(chunks), index_type)
    write_index(
        out_dir,
        build_vector_index(vectors.astype(np.float32), index_type),
        LexicalIndex.build(lexical_text(doc) for doc in documents),
        chunks,
        entries,
        manifest,
    )
    return manifest, True


def _reused_dimension(reusable: dict[str, np.ndarray]) -> int:
    return int(next(iter(reusable.values())).shape[1])
