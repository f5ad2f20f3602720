"""Exact matches: a query that names a runbook's alert, or quotes its title, gets that runbook.

A runbook's names are the alert names its front matter lists (``alerts: [KubePodCrashLooping]``),
its file stem when the stem is an identifier of several parts (``KubePodCrashLooping``,
``node-disk-full``), and its title when the title has two words or more. One-word stems and
titles ("cache", "Watchdog") are left to the ranked retrievers: as plain words they would
match too much. Names are compared as lower-case word sequences, so ``KubePodCrashLooping``,
``kubepodcrashlooping`` and "Kube Pod Crash Looping" each match their own kind of name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from knowledge.documents import Document
from knowledge.lexical import identifier_parts

_WORD = re.compile(r"[a-z0-9]+")
#: Names longer than this (in words) are not looked for.
MAX_NAME_WORDS = 16


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def alert_names(doc: Document) -> list[str]:
    """The alert names a document declares in its front matter (``alerts:`` or ``alert:``)."""
    declared = doc.meta.get("alerts", doc.meta.get("alert"))
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return []
    return [str(name).strip() for name in declared if str(name).strip()]


def document_names(doc: Document) -> list[str]:
    """Everything an exact match may quote: declared alerts, a multi-part stem, the title."""
    names = alert_names(doc)
    stem = PurePosixPath(doc.path).stem
    if len(identifier_parts(stem)) > 1:
        names.append(stem)
    if len(words(doc.title)) > 1:
        names.append(doc.title)
    return list(dict.fromkeys(names))


class NameMatcher:
    """Finds, in a query, the names of documents (by position in ``names_per_doc``)."""

    def __init__(self, names_per_doc: Sequence[Iterable[str]]) -> None:
        self._docs: dict[tuple[str, ...], set[int]] = {}
        for doc, names in enumerate(names_per_doc):
            for name in names:
                key = words(name)
                if 0 < len(key) <= MAX_NAME_WORDS:
                    self._docs.setdefault(key, set()).add(doc)
        self._longest = max((len(key) for key in self._docs), default=0)

    def match(self, query: str) -> list[int]:
        """Documents named in ``query``, longest name first (then by document order)."""
        found: dict[int, int] = {}
        q = words(query)
        for start in range(len(q)):
            for size in range(1, min(self._longest, len(q) - start) + 1):
                for doc in self._docs.get(q[start : start + size], ()):
                    found[doc] = max(found.get(doc, 0), size)
        return sorted(found, key=lambda doc: (-found[doc], doc))
