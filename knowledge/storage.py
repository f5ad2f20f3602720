"""The files of an index folder, and what its manifest says.

- ``index.faiss``     chunk embeddings (L2-normalised): exact inner product, or HNSW past
  ``approx_above`` chunks (see ``knowledge.vectors``);
- ``chunks.jsonl``    one chunk a line, in index order (each document's chunks together);
- ``documents.jsonl`` one runbook a line: path, title, content hash, names, its chunk range;
- ``lexical.*``       the BM25 index over whole runbooks (see ``knowledge.lexical``);
- ``manifest.json``   model, dimension, index type, corpus and per-document hashes, counts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from knowledge.documents import Chunk
from knowledge.lexical import FILES as LEXICAL_FILES
from knowledge.lexical import LexicalIndex
from knowledge.vectors import DEFAULT_APPROX_ABOVE, all_vectors, choose_index_type

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
DOCUMENTS_FILE = "documents.jsonl"
MANIFEST_FILE = "manifest.json"
#: Bumped when chunking, the analyzer or the file layout change: older indexes are rebuilt.
FORMAT_VERSION = 2


class IndexMissingError(Exception):
    """No index where one was expected."""


class IndexMismatchError(Exception):
    """The index was built with another embedding model or format."""


@dataclass(frozen=True)
class Manifest:
    """What an index folder holds."""

    format: int
    model: str
    dimension: int
    corpus_hash: str
    documents: int
    chunks: int
    source: str
    built_at: float
    index_type: str = "flat"  # "flat" (exact) or "hnsw" (approximate)
    lexical: str = "bm25s"
    embedded: int = 0  # chunks embedded by the build that wrote it; the rest were reused
    doc_hashes: dict[str, str] = field(default_factory=dict)  # path -> content hash


@dataclass(frozen=True)
class DocumentEntry:
    """One runbook of the index and where its chunks are."""

    path: str
    title: str
    sha256: str
    names: list[str]  # what an exact match may quote (knowledge.names)
    first: int  # index of its first chunk
    count: int  # number of its chunks


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST_FILE
    if not path.exists():
        raise IndexMissingError(
            f"no runbook index in {index_dir}: build one with `opsbot index PATH`"
        )
    data = json.loads(path.read_text())
    known = {f.name for f in fields(Manifest)}
    return Manifest(**{key: value for key, value in data.items() if key in known})


def current_manifest(
    out_dir: Path, corpus: str, model: str, approx_above: int = DEFAULT_APPROX_ABOVE
) -> Manifest | None:
    """The manifest of the index in ``out_dir`` if it holds ``corpus`` embedded by ``model``
    in the index type ``approx_above`` asks for."""
    try:
        manifest = read_manifest(out_dir)
    except (IndexMissingError, TypeError, ValueError):
        return None
    same = (manifest.format, manifest.corpus_hash, manifest.model) == (
        FORMAT_VERSION,
        corpus,
        model,
    )
    fits = manifest.index_type == choose_index_type(manifest.chunks, approx_above)
    return manifest if same and fits and (out_dir / INDEX_FILE).exists() else None


def previous_vectors(out_dir: Path, model: str) -> dict[str, np.ndarray]:
    """Chunk vectors of each document of the index in ``out_dir``, by content hash.

    Empty when there is no index, or one of another format or model.
    """
    try:
        manifest = read_manifest(out_dir)
        if (manifest.format, manifest.model) != (FORMAT_VERSION, model):
            return {}
        entries = read_entries(out_dir)
        vectors = all_vectors(faiss.read_index(str(out_dir / INDEX_FILE)))
    except (IndexMissingError, OSError, RuntimeError, TypeError, ValueError, KeyError):
        return {}
    if sum(e.count for e in entries) != len(vectors):
        return {}
    return {e.sha256: vectors[e.first : e.first + e.count] for e in entries}


def read_entries(index_dir: Path) -> list[DocumentEntry]:
    with (index_dir / DOCUMENTS_FILE).open(encoding="utf-8") as fh:
        return [DocumentEntry(**json.loads(line)) for line in fh if line.strip()]


def write_index(
    out_dir: Path,
    vectors: Any,
    lexical: LexicalIndex,
    chunks: list[Chunk],
    entries: list[DocumentEntry],
    manifest: Manifest,
) -> None:
    """Write every file beside, then rename them into place, the manifest last. A reader
    that loads during the renames finds counts that disagree and is told to rebuild."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / ".building"
    staging.mkdir(exist_ok=True)
    faiss.write_index(vectors, str(staging / INDEX_FILE))
    lexical.save(staging)
    for name, rows in ((CHUNKS_FILE, chunks), (DOCUMENTS_FILE, entries)):
        with (staging / name).open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(asdict(row)) + "\n")
    (staging / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2))
    names = [INDEX_FILE, *LEXICAL_FILES.values(), CHUNKS_FILE, DOCUMENTS_FILE, MANIFEST_FILE]
    for name in names:
        if (staging / name).exists():
            (staging / name).replace(out_dir / name)
        else:
            (out_dir / name).unlink(missing_ok=True)
    staging.rmdir()
