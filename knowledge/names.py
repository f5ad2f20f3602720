"""Exact matches: a query that names a runbook's alert, or quotes its title, gets that runbook.

A runbook's names are the alert names its front matter lists (``alerts: [KubePodCrashLooping]``),
its file stem when the stem is an identifier of several parts (``KubePodCrashLooping``,
``node-disk-full``), and its title when the title has two words or more. One-word stems and
titles ("cache", "Watchdog") are left to the ranked retrievers: as plain words they would
match too much. Names are compared as lower-case word sequences, so ``KubePodCrashLooping``,
``kubepodcrashlooping`` and "Kube Pod Crash Looping" each match their own kind of name.

Partial names: :class:`NameOverlap` ranks the runbooks whose name the query names in part
("KubeAPI has disappeared ..." and the runbook ``KubeAPIDown``), a third ranked list for the
fusion in ``knowledge.index``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from knowledge.documents import Document
from knowledge.lexical import identifier_parts, stemmed_parts

_WORD = re.compile(r"[a-z0-9]+")
#: Names longer than this (in words) are not looked for.
MAX_NAME_WORDS = 16
#: The share of a runbook's name (IDF-weighted) a query must hold to rank it by name.
MIN_NAME_COVERAGE = 1 / 3


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


class NameOverlap:
    """Ranks documents by how much of their name a query contains.

    A document's name terms are the stemmed identifier parts of its file stem, title and
    declared alert names (``KubeAPIDown`` and "Kube API Down" give ``kube``, ``api``,
    ``down``), each weighted by its inverse document frequency among the names, so a part
    that many runbooks share ("Kube", "Prometheus") weighs less than the one that tells
    siblings apart ("Scheduler", "Kubelet"). A document's score is the weighted share of its
    name terms the query contains; only documents with at least ``min_coverage`` of it are
    ranked: a query that mentions one common part of a long name has not named that runbook.

    Alert texts name the component they are about ("Kubelet has disappeared from Prometheus
    target discovery") in words that are a runbook's name rather than its body, while sibling
    runbooks share the rest of the sentence word for word. Whole-document BM25 and embeddings
    see mostly the shared sentence; this ranking sees the name.
    """

    def __init__(
        self, names_per_doc: Sequence[Iterable[str]], min_coverage: float = MIN_NAME_COVERAGE
    ) -> None:
        terms_per_doc = [
            frozenset(t for name in names for t in stemmed_parts(name)) for names in names_per_doc
        ]
        frequency: dict[str, int] = {}
        for terms in terms_per_doc:
            for term in terms:
                frequency[term] = frequency.get(term, 0) + 1
        n = len(terms_per_doc)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        self._postings: dict[str, list[int]] = {}
        for doc, terms in enumerate(terms_per_doc):
            for term in terms:
                self._postings.setdefault(term, []).append(doc)
        self._total = [sum(self._idf[t] for t in terms) for terms in terms_per_doc]
        self.min_coverage = min_coverage

    def scores(self, terms: Iterable[str]) -> dict[int, float]:
        """Document → share of its name in ``terms`` (query terms, ``stemmed_parts``)."""
        held: dict[int, float] = {}
        for term in set(terms):
            for doc in self._postings.get(term, ()):
                held[doc] = held.get(doc, 0.0) + self._idf[term]
        coverage = {doc: weight / self._total[doc] for doc, weight in held.items()}
        return {doc: c for doc, c in coverage.items() if c >= self.min_coverage}
