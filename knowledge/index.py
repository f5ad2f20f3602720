"""Hybrid search over a runbook index (built by ``knowledge.build``).

A query that names a runbook's alert, quotes its title or carries its ``runbook_url`` gets
that runbook first (``knowledge.names``). The rest is ranked by reciprocal rank fusion
(``knowledge.fusion``) of dense retrieval (FAISS over section embeddings: each runbook's
best section), BM25 over whole runbooks (``knowledge.lexical``) and, in hybrid mode, the
runbooks whose name the query holds a good part of (``knowledge.names.NameOverlap``), each
list with the same weight; grouped per runbook, with the best section and a snippet.

The query is analyzed once: BM25, the name overlap and the choice of each runbook's section
share its terms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

import faiss
import numpy as np

from knowledge.alerts import runbook_key
from knowledge.build import build_index, embedding_text, lexical_text
from knowledge.documents import Chunk
from knowledge.embedder import Embedder
from knowledge.fusion import RRF_K, best_possible, competition_ranks, reciprocal_rank_fusion
from knowledge.lexical import LexicalIndex, tokenize
from knowledge.names import NameMatcher, NameOverlap
from knowledge.storage import (
    CHUNKS_FILE,
    FORMAT_VERSION,
    INDEX_FILE,
    DocumentEntry,
    IndexMismatchError,
    IndexMissingError,
    Manifest,
    current_manifest,
    read_entries,
    read_manifest,
)
from knowledge.vectors import index_type_of, searcher
from knowledge.vectors import search as vector_search

__all__ = [
    "IndexMismatchError",
    "IndexMissingError",
    "Manifest",
    "RunbookIndex",
    "SearchHit",
    "build_index",
    "current_manifest",
    "embedding_text",
    "lexical_text",
    "read_manifest",
    "snippet",
]

Mode = Literal["hybrid", "dense", "lexical"]
#: Chunks the dense retriever looks at per query (all of them in a small corpus).
DENSE_CANDIDATES = 512
#: Runbooks the lexical retriever ranks per query.
LEXICAL_CANDIDATES = 512
#: A dense match below this cosine similarity is no evidence on its own.
MIN_SIMILARITY = 0.2
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Fusion:
    """How the ranked lists are fused: each list's weight in reciprocal rank fusion and
    the RRF constant. A weight of 0 leaves a list out, so "dense alone" is a fusion too:
    the weights are chosen by cross-validation among settings that include each list
    alone (``bench.retrieval_cv``), so the chosen fusion cannot be worse, on the folds,
    than its best component."""

    dense: float = 1.0
    lexical: float = 1.0
    names: float = 1.0
    k: int = RRF_K

    def weights(self, mode: Mode) -> tuple[float, ...]:
        if mode == "dense":
            return (1.0, 0.0, 0.0)
        if mode == "lexical":
            return (0.0, 1.0, 0.0)
        return (self.dense, self.lexical, self.names)


#: The fusion ``search`` uses (see ``bench/results/retrieval_cv.json`` for how it was chosen).
DEFAULT_FUSION = Fusion(dense=1.0, lexical=1.0, names=0.5, k=10)


@dataclass(frozen=True)
class NoMatch:
    """When the best runbook found is no answer: nothing in the runbooks matches.

    A runbook the query names or links always answers. Otherwise the best hit answers when
    its evidence — the cosine similarity of its best section to the query, plus
    ``coverage_weight`` times the share of the query's words that section holds (words, not
    the names of pods, hosts or paths an alert carries) — reaches
    ``min_evidence``. Off-topic questions ("renew an AWS IAM access key") reach cosine
    0.3–0.5 with MiniLM on ops runbooks, but share few of their words with the section;
    questions a runbook answers mostly score higher or share its words. Both values are
    chosen by cross-validation on on- and off-topic dev questions (``bench.retrieval_cv``).
    """

    coverage_weight: float = 0.0
    min_evidence: float = 0.0

    def evidence(self, hit: SearchHit) -> float:
        return hit.dense + self.coverage_weight * hit.coverage

    def answers(self, hit: SearchHit) -> bool:
        return hit.exact or self.evidence(hit) >= self.min_evidence


#: The rule the runbook tool applies (``bench/results/retrieval_cv.json``: how it was chosen).
DEFAULT_NO_MATCH = NoMatch(coverage_weight=0.5, min_evidence=0.6)


@dataclass
class Candidates:
    """What each retriever found for one query, before fusion."""

    terms: list[str]
    vector: np.ndarray | None
    dense: dict[int, tuple[float, int]]  # runbook → best section's similarity, that section
    lexical: dict[int, float]  # runbook → BM25
    names: dict[int, float]  # runbook → share of its name in the query
    exact: list[int]  # runbooks the query names or links


@dataclass(frozen=True)
class SearchHit:
    """A document that matches a query, with its best section.

    ``score`` is the fused relevance, relative to a runbook ranked first by every list of the
    mode: 1.0 for a runbook named in the query or first in every list. In hybrid mode (three
    lists: dense, BM25, name overlap) a runbook first for dense and BM25 but not named gets
    about 0.67, one found by a single list about 0.33; with two lists, 1.0 and 0.5. ``dense``
    is the cosine similarity of the best section, ``lexical`` the runbook's BM25 score,
    ``coverage`` the share of the query's words (stemmed, not stop words, not names such as
    pods or hosts) the quoted section holds.
    """

    doc: str
    title: str
    section: str
    score: float
    snippet: str
    text: str  # the whole section
    exact: bool = False
    dense: float = 0.0
    lexical: float = 0.0
    coverage: float = 0.0  # share of the query's terms in the quoted section

    @property
    def heading(self) -> str:
        return f"{self.title} > {self.section}" if self.section else self.title


class RunbookIndex:
    """A loaded index that answers queries with documents, best first."""

    def __init__(self, index_dir: Path, embedder: Embedder, *, use_gpu: bool | None = None) -> None:
        try:
            self.manifest = read_manifest(index_dir)
        except (TypeError, ValueError):
            raise IndexMismatchError(
                f"index in {index_dir} is unreadable; rebuild it with `opsbot index PATH`"
            ) from None
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
        self._vectors = faiss.read_index(str(index_dir / INDEX_FILE))
        self._searcher = searcher(self._vectors, use_gpu=use_gpu)
        self.index_type = index_type_of(self._vectors)
        with (index_dir / CHUNKS_FILE).open(encoding="utf-8") as fh:
            self.chunks = [Chunk(**json.loads(line)) for line in fh if line.strip()]
        self.documents = read_entries(index_dir)
        self._lexical = LexicalIndex.load(index_dir)
        consistent = len(self.chunks) == self._vectors.ntotal == sum(
            e.count for e in self.documents
        ) and self._lexical.size == len(self.documents)
        if not consistent:
            raise IndexMismatchError(f"index in {index_dir} is inconsistent; rebuild it")
        self._doc_of_chunk = np.repeat(
            np.arange(len(self.documents)), [e.count for e in self.documents]
        )
        self._names = NameMatcher([e.names for e in self.documents])
        self._name_overlap = NameOverlap(
            [[PurePosixPath(e.path).stem, e.title, *e.names] for e in self.documents]
        )
        self._position = {entry.path: i for i, entry in enumerate(self.documents)}
        self._by_key: dict[str, list[int]] = {}  # file stems and declared alert names
        for position, entry in enumerate(self.documents):
            for key in {runbook_key(entry.path), *(n.lower() for n in entry.names)}:
                self._by_key.setdefault(key, []).append(position)

    def resolve_url(self, url: str) -> str | None:
        """The runbook a ``runbook_url`` (or a file name or path) points at, if indexed.

        The URL's last part is matched, ignoring case and suffix, against file stems and the
        alert names runbooks declare: ``.../runbooks/kubernetes/kubepodcrashlooping`` finds
        ``kubernetes/KubePodCrashLooping.md``. When several runbooks match, the one whose
        folders match more of the URL's path wins, then a file name over an alert name.
        """
        key = runbook_key(url)
        candidates = self._by_key.get(key, [])
        if not candidates:
            return None
        folders = [p.lower() for p in PurePosixPath(re.split(r"[?#]", url)[0]).parts[:-1]]

        def preference(position: int) -> tuple[int, bool]:
            path = self.documents[position].path
            shared = 0
            for mine, theirs in zip(
                reversed(PurePosixPath(path.lower()).parts[:-1]), reversed(folders), strict=False
            ):
                if mine != theirs:
                    break
                shared += 1
            return shared, runbook_key(path) == key

        return self.documents[max(candidates, key=preference)].path

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        context: str | None = None,
        context_weight: float = 0.5,
        mode: Mode = "hybrid",
        fusion: Fusion | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, each with its best-matching section.

        ``context`` (an earlier question of the conversation) steers a short follow-up: the
        query vector is blended with the context's, ``context_weight`` of it, and renormalised;
        BM25 adds the context's scores at the same weight. ``mode`` picks the ranked
        retrievers (``dense`` or ``lexical``, BM25 alone, for comparison; ``hybrid`` adds the
        name overlap of the query, not of the context); exact matches come first in every
        mode. A runbook is returned only with evidence: named in the query, or with a section
        within ``MIN_SIMILARITY`` of it (a term in common, for lexical search).
        """
        query = query.strip()
        if not query or k < 1:
            return []
        found = self.candidates(query, context=context, context_weight=context_weight, mode=mode)
        terms = set(found.terms)
        # Coverage counts the query's words, not the names it carries (pods, hosts, paths:
        # no runbook holds them); a follow-up is asked with its topic, whose words count too.
        asked = set(tokenize(plain_words(query))) or terms
        if context and context.strip():
            asked |= set(tokenize(context))
        hits: list[SearchHit] = []
        for d, score in self.rank(found, fusion or DEFAULT_FUSION, mode)[:k]:
            lexical = found.lexical.get(d, 0.0)
            hits.append(
                self._hit(
                    d,
                    terms,
                    found.vector,
                    score=score,
                    lexical=lexical,
                    exact=d in found.exact,
                    asked=asked,
                )  # fmt: skip
            )
        return hits

    def candidates(
        self, query: str, *, context: str | None = None, context_weight: float = 0.5,
        mode: Mode = "hybrid",
    ) -> Candidates:  # fmt: skip
        """Every retriever's findings for ``query`` (the expensive part of a search)."""
        context = context.strip() if context else None
        terms = tokenize(query)
        vector = self._query_vector(query, context, context_weight) if mode != "lexical" else None
        return Candidates(
            terms=terms, vector=vector,
            dense=self._dense(vector) if vector is not None else {},
            lexical=self._lexical_scores(terms, context, context_weight) if mode != "dense" else {},
            names=self._name_overlap.scores(terms) if mode == "hybrid" else {},
            exact=self._exact(query),
        )  # fmt: skip

    def rank(
        self, found: Candidates, fusion: Fusion = DEFAULT_FUSION, mode: Mode = "hybrid"
    ) -> list[tuple[int, float]]:
        """Runbooks with evidence, best first, with their score: 1.0 when named in the
        query, else the fused score relative to one first in every list of the fusion."""
        weights = fusion.weights(mode)
        rankings = [competition_ranks({d: s for d, (s, _) in found.dense.items()}),
                    competition_ranks(found.lexical), competition_ranks(found.names)]  # fmt: skip
        fused = reciprocal_rank_fusion(rankings, fusion.k, weights)
        top = best_possible(weights, fusion.k)
        exact, dense, lexical = found.exact, found.dense, found.lexical
        order = sorted(
            set(exact) | set(fused),
            key=lambda d: (
                d not in exact,
                -fused.get(d, 0.0),
                -lexical.get(d, 0.0),  # ties go to the lexical order, then the dense one
                -dense.get(d, (-1.0, -1))[0],
            ),
        )
        ranked = []
        for d in order:
            if d not in exact and not self._has_evidence(d, found.vector, dense, lexical):
                continue
            ranked.append((d, 1.0 if d in exact else min(1.0, fused.get(d, 0.0) / top)))
        return ranked

    def _has_evidence(
        self,
        position: int,
        vector: np.ndarray | None,
        dense: dict[int, tuple[float, int]],
        lexical: dict[int, float],
    ) -> bool:
        """A section within MIN_SIMILARITY of the query (or, for lexical search alone, a term
        in common). BM25 ranks but does not admit: one shared word is no answer."""
        if vector is None:
            return lexical.get(position, 0.0) > 0
        if position in dense:
            return dense[position][0] >= MIN_SIMILARITY
        entry = self.documents[position]
        if entry.count == 0:
            return False
        sims = self._vectors.reconstruct_n(entry.first, entry.count) @ vector[0]
        return float(sims.max()) >= MIN_SIMILARITY

    def _query_vector(self, query: str, context: str | None, weight: float) -> np.ndarray:
        if not context:
            return self.embedder.encode([query])
        query_vec, context_vec = self.embedder.encode([query, context])
        blended = query_vec + weight * context_vec
        return (blended / np.linalg.norm(blended)).reshape(1, -1).astype(np.float32)

    def _dense(self, vector: np.ndarray) -> dict[int, tuple[float, int]]:
        """Per document: the best cosine similarity among the candidate chunks, and that chunk."""
        depth = min(self._vectors.ntotal, DENSE_CANDIDATES)
        if depth == 0:
            return {}
        scores, ids = vector_search(self._searcher, vector, depth)
        best: dict[int, tuple[float, int]] = {}
        for score, idx in zip(scores[0], ids[0], strict=True):
            if idx < 0:
                continue
            doc = int(self._doc_of_chunk[idx])
            if doc not in best:
                best[doc] = (float(score), int(idx))
        return best

    def _lexical_scores(
        self, terms: list[str], context: str | None, weight: float
    ) -> dict[int, float]:
        """BM25 of the best runbooks (those with any term in common with the query)."""
        scores = self._lexical.scores_of(terms)
        if context:
            scores = scores + weight * self._lexical.scores(context)
        count = min(LEXICAL_CANDIDATES, int(np.count_nonzero(scores > 0)))
        if count == 0:
            return {}
        top = np.argpartition(-scores, count - 1)[:count]
        return {int(d): float(scores[d]) for d in top}

    def _exact(self, query: str) -> list[int]:
        """Runbooks the query names (alert name, title) or links (``runbook_url``)."""
        found = self._names.match(query)
        for url in _URL.findall(query):
            path = self.resolve_url(url.rstrip(".,;)>\"'"))
            position = self._position.get(path) if path else None
            if position is not None and position not in found:
                found.append(position)
        return found

    def _hit(
        self,
        position: int,
        terms: set[str],
        vector: np.ndarray | None,
        *,
        score: float,
        lexical: float,
        exact: bool,
        asked: set[str] | None = None,
    ) -> SearchHit:
        entry = self.documents[position]
        asked = terms if asked is None else asked
        chunk_id, similarity = self._best_section(entry, terms, vector)
        chunk = self.chunks[chunk_id] if chunk_id is not None else None
        return SearchHit(
            doc=entry.path,
            title=entry.title,
            section=chunk.section if chunk else "",
            score=round(score, 4),
            snippet=snippet(chunk.text) if chunk else "",
            text=chunk.text if chunk else "",
            exact=exact,
            dense=round(similarity, 4),
            lexical=round(lexical, 4),
            coverage=round(len(asked & self._chunk_terms(chunk_id)) / len(asked), 4)
            if chunk_id is not None and asked
            else 0.0,
        )

    def _best_section(
        self, entry: DocumentEntry, terms: set[str], vector: np.ndarray | None
    ) -> tuple[int | None, float]:
        """The runbook's section to quote, and the best similarity of any of its sections.

        Sections are ranked by similarity to the query and by the query terms they contain,
        fused like the runbooks (ties to the similarity): a long section with the commands
        the question asks about beats a short one that only sounds alike.
        """
        if entry.count == 0:
            return None, 0.0
        ids = range(entry.first, entry.first + entry.count)
        overlap = {j: len(terms & self._chunk_terms(i)) for j, i in enumerate(ids)}
        if vector is None:
            best = max(overlap, key=lambda j: (overlap[j], -j))
            return ids[best], 0.0
        sims = self._vectors.reconstruct_n(entry.first, entry.count) @ vector[0]
        similarity = {j: float(sim) for j, sim in enumerate(sims)}
        fused = reciprocal_rank_fusion([competition_ranks(similarity), competition_ranks(overlap)])
        best = max(fused, key=lambda j: (fused[j], similarity[j]))
        return ids[best], max(similarity.values())

    def _chunk_terms(self, chunk_id: int) -> frozenset[str]:
        return _terms(embedding_text(self.chunks[chunk_id]))


#: A token that names a thing rather than says a word: it holds a digit or a separator.
_NAME_LIKE = re.compile(r"[\d_/\-.:=@]")


def plain_words(text: str) -> str:
    """The words of ``text`` without the names it carries (``ml-training``,
    ``worker-9.prod``, ``monitoring/prometheus-k8s-1``, ``10.0.6.9:9100``)."""
    words = (w.strip(".,;:()[]{}?!'\"") for w in text.split())
    return " ".join(w for w in words if w and not _NAME_LIKE.search(w))


@lru_cache(maxsize=8192)
def _terms(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


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
