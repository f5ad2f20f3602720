"""Runbook retrieval: a query → the runbook (and section) that answers it, through the
runbook tool's own search (``tools.runbooks.search_runbooks``: the hybrid index and its
cut-off). hit@1, hit@5 and reciprocal rank for on-topic cases, and ragas' ID-based context
precision and recall of the first ``RAGAS_K`` runbooks against the one that answers (when
ragas, the evals extra, is installed; else those two are not scored); for off-topic ones
(``runbook: null``), whether the search rightly returned nothing."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections import Counter
from pathlib import Path

from evals.cases import CaseBase, load_cases
from evals.scorers import Scored
from evals.suite import Split, Suite
from knowledge.alerts import alert_query
from knowledge.build import build_index
from knowledge.embedder import DEFAULT_EMBEDDING_MODEL, get_embedder
from tools.base import ToolContext
from tools.runbooks import search_runbooks

K = 10
#: The runbooks ragas' ID-based context precision and recall look at.
RAGAS_K = 5


class RetrievalCase(CaseBase):
    query: str
    runbook: str | None
    section: str | None = None


def alert_cases(path: Path) -> list[RetrievalCase]:
    """Alert rules with the runbook each links to (summary and description, name left out)."""
    cases, seen = [], Counter[str]()
    for alert in json.loads(path.read_text()):
        seen[alert["alert"]] += 1  # a name in two rule groups (two severities) is two cases
        n = seen[alert["alert"]]
        ident = alert["alert"] if n == 1 else f"{alert['alert']}#{n}"
        cases.append(RetrievalCase(id=ident, query=alert_query(alert), runbook=alert["runbook"]))
    return cases


def in_section(path: str, heading: str) -> bool:
    """A hit's section is its heading path (``Diagnosis > Check recent deploys``): it is in
    the expected section when that heading is on the path."""
    return heading.strip().lower() in [part.strip().lower() for part in path.split(">")]


def split_cases(suite: Suite, split: Split) -> list[RetrievalCase]:
    """A split's cases: alert rules from a ``.json`` file, case files otherwise."""
    files = suite.case_files(split)
    if not any(f.suffix == ".json" for f in files):
        return suite.load(split, RetrievalCase)
    key = suite.split(split).key
    out: list[RetrievalCase] = []
    for path in files:
        out += alert_cases(path) if path.suffix == ".json" else load_cases(path, RetrievalCase, key)
    return out


def rank_of(docs: list[str], want: str) -> int | None:
    """Where ``want`` is among the ranked ``docs`` (1 is first), or None."""
    return docs.index(want) + 1 if want in docs else None


def rank_summary(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@5 and MRR over ranks (``bench.retrieval`` reports these per search mode)."""
    n = max(1, len(ranks))
    return {"hit@1": round(sum(r == 1 for r in ranks) / n, 3),
            "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
            "mrr@10": round(sum(1 / r for r in ranks if r and r <= 10) / n, 3)}  # fmt: skip


class RetrievalScorer:
    def __init__(self, suite: Suite, split: Split, work: Path) -> None:
        self.spec = suite.split(split)
        self.suite, self.split_name = suite, split
        corpus = suite.path(self.spec.corpus or "project:knowledge/runbooks")
        embedder = get_embedder(DEFAULT_EMBEDDING_MODEL)
        build_index(corpus, work / "index", embedder)
        self.ctx = ToolContext(index_dir=work / "index", embedding_model=DEFAULT_EMBEDDING_MODEL)
        self.loop = asyncio.new_event_loop()
        self.ragas = None
        if importlib.util.find_spec("ragas") is not None:
            from ragas.metrics import IDBasedContextPrecision, IDBasedContextRecall

            import evals.judge  # noqa: F401  (ragas' telemetry off before ragas is imported)

            self.ragas = (IDBasedContextPrecision(), IDBasedContextRecall())

    def cases(self) -> list[RetrievalCase]:
        return split_cases(self.suite, self.split_name)

    def score(self, case: RetrievalCase) -> Scored:
        hits = search_runbooks(self.ctx, case.query, K)
        docs = [h.doc for h in hits]
        output = {"top": [f"{h.doc}#{h.section}" for h in hits[:3]],
                  "scores": [round(h.score, 3) for h in hits[:3]]}  # fmt: skip
        if case.runbook is None:
            return Scored({"abstain": float(not hits)}, not hits, output)
        rank = rank_of(docs, case.runbook)
        scores = {"hit@1": float(rank == 1), "hit@5": float(rank is not None and rank <= 5),
                  "mrr": 1.0 / rank if rank else 0.0}  # fmt: skip
        if self.ragas is not None:
            scores |= self.loop.run_until_complete(self._ragas(docs[:RAGAS_K], case.runbook))
        if case.section is not None:
            top = hits[0] if hits else None
            right = bool(top and top.doc == case.runbook and in_section(top.section, case.section))
            scores["section@1"] = float(right)
        return Scored(scores, rank == 1, output | {"rank": rank})

    async def _ragas(self, retrieved: list[str], reference: str) -> dict[str, float]:
        from ragas.dataset_schema import SingleTurnSample

        assert self.ragas is not None
        precision, recall = self.ragas
        sample = SingleTurnSample(retrieved_context_ids=retrieved or [""],
                                  reference_context_ids=[reference])  # fmt: skip
        return {
            "id_context_precision": round(float(await precision.single_turn_ascore(sample)), 4),
            "id_context_recall": round(float(await recall.single_turn_ascore(sample)), 4),
        }

    def close(self) -> None:
        self.loop.close()
