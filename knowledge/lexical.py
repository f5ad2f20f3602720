"""Lexical retrieval: BM25 (``bm25s``) over whole runbooks, with an analyzer for ops text.

Alert text and runbooks share identifiers (``KubePodCrashLooping``, ``kube-state-metrics``,
``CrashLoopBackOff``) that a plain word splitter keeps whole or loses. The analyzer:

- splits identifiers at ``camelCase``, ``_`` and ``-`` boundaries and emits the parts,
  lower-cased, Snowball-stemmed, without Lucene's English stop words or bare numbers;
- also emits the joined runs of two or more parts (``KubeAPIDown`` gives ``kubeapi``,
  ``apidown`` and ``kubeapidown``), so "KubeAPI" in a query meets "KubeAPIDown" in a runbook.

BM25 runs with the library's (Lucene's) defaults: ``k1=1.5``, ``b=0.75``. Each query term
counts once however often the query repeats it (binary query-term weights, BM25's ``k3 = 0``):
an alert's summary often restates its description, and a generic phrase said twice
("disappeared from Prometheus target discovery") must not outweigh the one word that names
the component.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

#: File names of the saved BM25 index, inside the index folder.
FILES = {
    "data_name": "lexical.data.npy",
    "indices_name": "lexical.indices.npy",
    "indptr_name": "lexical.indptr.npy",
    "vocab_name": "lexical.vocab.json",
    "params_name": "lexical.params.json",
    "nnoc_name": "lexical.nonoccurrence.npy",
}
#: Identifiers with more parts than this emit only their whole compound, not every run.
MAX_COMPOUND_PARTS = 8

_RAW = re.compile(r"[A-Za-z0-9]+(?:[_\-][A-Za-z0-9]+)*")
_SEP = re.compile(r"[_\-]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOP = frozenset(STOPWORDS_EN)

logging.getLogger("bm25s").setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def identifier_parts(raw: str) -> list[str]:
    """``KubeAPIDown`` → ``["Kube", "API", "Down"]``; ``kube-state-metrics`` → 3 parts."""
    return [part for seg in _SEP.split(raw) for part in _CAMEL.findall(seg)]


def stemmed_parts(text: str) -> list[str]:
    """The analyzer's single-part terms of ``text``, without the joined runs."""
    stem = _stemmer().stemWord
    out: list[str] = []
    for raw in _RAW.findall(text):
        for part in identifier_parts(raw):
            word = part.lower()
            if not word.isdigit() and word not in _STOP:
                out.append(stem(word))
    return out


def tokenize(text: str) -> list[str]:
    """The analyzer above, for documents and queries alike."""
    stem = _stemmer().stemWord
    out: list[str] = []
    for raw in _RAW.findall(text):
        parts = identifier_parts(raw)
        for part in parts:
            word = part.lower()
            if not word.isdigit() and word not in _STOP:
                out.append(stem(word))
        if len(parts) > 1:
            low = [p.lower() for p in parts]
            if len(low) > MAX_COMPOUND_PARTS:
                out.append("".join(low))
                continue
            for i in range(len(low)):
                for j in range(i + 2, len(low) + 1):
                    out.append("".join(low[i:j]))
    return out


class LexicalIndex:
    """BM25 over a fixed list of texts (one per runbook), saved beside the vector index."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        self._vocab: dict[str, int] = model.vocab_dict
        self.size = int(model.scores["num_docs"])

    @classmethod
    def build(cls, texts: Iterable[str]) -> LexicalIndex:
        model = bm25s.BM25()
        model.index([tokenize(text) for text in texts], show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(folder, show_progress=False, **FILES)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(folder, show_progress=False, **FILES))

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every text for ``query`` (zeros when no query term is indexed)."""
        return self.scores_of(tokenize(query))

    def scores_of(self, terms: Iterable[str]) -> np.ndarray:
        """BM25 of every text for analyzed query ``terms``, each distinct term once."""
        ids = [self._vocab[t] for t in dict.fromkeys(terms) if t in self._vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)
