"""Load runbooks from a folder and cut them into chunks, one per heading section.

A chunk keeps its heading path (``Title > Diagnosis > Check recent deploys``) so that an
answer can cite the document and the section it quotes. Fenced code blocks are kept
whole: a ``#`` inside a code block is a comment, not a heading.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SUFFIXES = (".md", ".markdown", ".txt")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
#: Sections longer than this are split at paragraph boundaries.
MAX_CHUNK_CHARS = 1500


@dataclass(frozen=True)
class Document:
    """One runbook file."""

    path: str  # relative to the indexed folder, with forward slashes
    title: str
    text: str  # body without front matter
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of all the index takes from the file: title, front matter and body."""
        digest = hashlib.sha256()
        for part in (self.title, json.dumps(self.meta, sort_keys=True, default=str), self.text):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A section of a document: the unit that is embedded and searched."""

    doc: str
    title: str
    section: str  # heading path below the title, "" for the text before any heading
    text: str

    @property
    def heading(self) -> str:
        return f"{self.title} > {self.section}" if self.section else self.title


def split_front_matter(raw: str) -> tuple[dict[str, object], str]:
    """Separate a leading ``---`` YAML block from the body; bad YAML is kept as text."""
    if not raw.startswith("---"):
        return {}, raw
    end = raw.find("\n---", 3)
    if end < 0:
        return {}, raw
    try:
        meta = yaml.safe_load(raw[3:end]) or {}
    except yaml.YAMLError:
        return {}, raw
    if not isinstance(meta, dict):
        return {}, raw
    body = raw[end + 4 :]
    return meta, body.split("\n", 1)[1] if "\n" in body else ""


def load_document(path: Path, root: Path) -> Document:
    raw = path.read_text(encoding="utf-8", errors="replace")
    meta, body = split_front_matter(raw)
    title = str(meta.get("title") or _first_heading(body) or path.stem)
    rel = path.relative_to(root).as_posix()
    return Document(path=rel, title=title, text=body, meta=meta)


def load_documents(root: Path) -> list[Document]:
    """Every Markdown or text file under ``root``, sorted by path (READMEs excluded)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and p.stem.lower() != "readme"
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    return [load_document(p, root) for p in files]


def _first_heading(body: str) -> str | None:
    for line, in_code in _lines(body):
        match = None if in_code else HEADING.match(line)
        if match:
            return match.group(2).strip()
    return None


def _lines(body: str) -> list[tuple[str, bool]]:
    """Lines with a flag telling whether each is inside a fenced code block."""
    out: list[tuple[str, bool]] = []
    in_code = False
    for line in body.splitlines():
        if FENCE.match(line):
            out.append((line, True))
            in_code = not in_code
            continue
        out.append((line, in_code))
    return out


def chunk_document(doc: Document) -> list[Chunk]:
    """Cut a document at its headings; the title heading itself opens no section."""
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []  # (level, heading) of the open sections
    buffer: list[str] = []

    def flush() -> None:
        text = "\n".join(buffer).strip()
        buffer.clear()
        if not text:
            return
        names = [name for _, name in path if name != doc.title]
        section = " > ".join(names)
        for part in _split_long(text):
            chunks.append(Chunk(doc=doc.path, title=doc.title, section=section, text=part))

    for line, in_code in _lines(doc.text):
        match = None if in_code else HEADING.match(line)
        if not match:
            buffer.append(line)
            continue
        flush()
        level, name = len(match.group(1)), match.group(2).strip()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, name))
    flush()
    return chunks


def _split_long(text: str) -> list[str]:
    """Split at blank lines outside code blocks so no part exceeds MAX_CHUNK_CHARS much."""
    if len(text) <= MAX_CHUNK_CHARS:
        return [text]
    paragraphs: list[str] = []
    current: list[str] = []
    for line, in_code in _lines(text):
        if not line.strip() and not in_code and current:
            paragraphs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    parts: list[str] = []
    size = 0
    for para in paragraphs:
        if parts and size + len(para) > MAX_CHUNK_CHARS:
            parts.append("")
            size = 0
        if not parts:
            parts.append("")
        parts[-1] = (parts[-1] + "\n\n" + para).strip()
        size += len(para)
    return [p for p in parts if p]


def corpus_hash(documents: list[Document]) -> str:
    """One hash of the paths and contents: tells whether an index is current."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(doc.path.encode())
        digest.update(b"\0")
        digest.update(doc.sha256.encode())
    return digest.hexdigest()
