"""Answers (RAG): questions over the project's runbooks with a reference answer and the
sections that hold it, asked of the bot's real agent (``bot.agent.service.open_agent``: the
same graph, planner, tools and index ``opsbot serve`` uses, with its configured model if
any). What the bot answers is the model's summary when it wrote one, else the passage it
leads with (its first evidence); what it retrieved is the runbook evidence it cites.

Scored without a judge: ROUGE-L and chrF of the answer against the reference (ragas'
``RougeScore`` and ``CHRFScore``), and ID-based context precision and recall (which cited
sections are reference sections, and which reference sections were cited). With a judge
(``OPSBOT_EVAL_JUDGE_URL``): ragas faithfulness, response relevancy and context precision
(see ``evals.judge``). A judge that fails on a case makes it ``judge_error``; its
non-judged scores still count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evals.cases import CaseBase
from evals.judge import Judge, JudgeConfig
from evals.scorers import Scored
from evals.scorers.retrieval import in_section
from evals.suite import Split, Suite
from knowledge.build import build_index
from knowledge.embedder import DEFAULT_EMBEDDING_MODEL, get_embedder


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runbook: str
    section: str


class AnswersCase(CaseBase):
    question: str
    reference: str
    contexts: list[Context] = Field(min_length=1)


def context_ids(cited: list[tuple[str, str]], references: list[Context]) -> list[str]:
    """Each cited (runbook, section path) as an id: the reference it falls in
    (``runbook#heading``) when it does, else its own."""
    ids = []
    for doc, path in cited:
        match = next((r for r in references
                      if r.runbook == doc and in_section(path, r.section)), None)  # fmt: skip
        ids.append(f"{match.runbook}#{match.section}" if match else f"{doc}#{path}")
    return ids


def id_precision_recall(retrieved: list[str], reference: list[str]) -> tuple[float, float]:
    """ragas' ID-based context precision and recall, on the same ids."""
    wanted = set(reference)
    precision = sum(r in wanted for r in retrieved) / len(retrieved) if retrieved else 0.0
    recall = len(wanted & set(retrieved)) / len(wanted) if wanted else 0.0
    return round(precision, 4), round(recall, 4)


class AnswersScorer:
    def __init__(self, suite: Suite, split: Split, work: Path, *, settings: Any = None,
                 judge: JudgeConfig | None = None) -> None:  # fmt: skip
        from ragas.metrics.collections import CHRFScore, RougeScore

        logging.getLogger("absl").setLevel(logging.WARNING)  # rouge_score's per-call INFO line
        from bot.settings import DatabaseSettings, Settings

        self.spec = suite.split(split)
        self.suite, self.split_name = suite, split
        corpus = suite.path(self.spec.corpus or "project:knowledge/runbooks")
        build_index(corpus, work / "index", get_embedder(DEFAULT_EMBEDDING_MODEL))
        base = settings or Settings()
        # The bot's agent and model, on a throw-away checkpointer and the suite's index.
        self.settings = Settings(data_dir=work, database=DatabaseSettings(), llm=base.llm)
        self.rouge, self.chrf = RougeScore(), CHRFScore()
        self.loop = asyncio.new_event_loop()
        self.stack = contextlib.AsyncExitStack()
        self.judge = Judge(judge, DEFAULT_EMBEDDING_MODEL) if judge else None
        self.agent = self.loop.run_until_complete(self._open())
        model = self.agent.context.model
        self.name = (f"{self.settings.llm.model} (summaries)" if model and self.agent.context.assist
                     else "deterministic (no model)")  # fmt: skip

    async def _open(self) -> Any:
        from bot.agent.service import open_agent

        return await self.stack.enter_async_context(open_agent(self.settings, pool_size=1))

    def cases(self) -> list[AnswersCase]:
        return self.suite.load(self.split_name, AnswersCase)

    def score(self, case: AnswersCase) -> Scored:
        return self.loop.run_until_complete(self._score(case))

    async def _score(self, case: AnswersCase) -> Scored:
        answer = await self.agent.ask(f"eval-{case.id}", case.question, user="eval",
                                      source="eval", turn_id=None)  # fmt: skip
        evidence = [ev for ev in getattr(answer, "evidence", []) if ev.kind == "runbook"]
        response = (getattr(answer, "summary", None) or
                    (evidence[0].text if evidence else "")).strip()  # fmt: skip
        contexts = [ev.text for ev in evidence]
        retrieved = context_ids([(ev.source, ev.section) for ev in evidence], case.contexts)
        reference_ids = [f"{c.runbook}#{c.section}" for c in case.contexts]
        precision, recall = id_precision_recall(retrieved, reference_ids)
        scores: dict[str, float] = {"id_context_precision": precision, "id_context_recall": recall}
        if response:
            rouge = await self.rouge.ascore(reference=case.reference, response=response)
            chrf = await self.chrf.ascore(reference=case.reference, response=response)
            scores |= {"rouge_l": round(float(rouge.value), 4),
                       "chrf": round(float(chrf.value), 4)}  # fmt: skip
        output: dict[str, Any] = {"response": response[:600], "retrieved": retrieved[:5]}
        passed = recall > 0
        if self.judge is not None and response:
            judged, errors = await self.judge.score_all({
                "faithfulness": {"user_input": case.question, "response": response,
                                 "retrieved_contexts": contexts},
                "answer_relevancy": {"user_input": case.question, "response": response},
                "context_precision": {"user_input": case.question, "reference": case.reference,
                                      "retrieved_contexts": contexts},
            })  # fmt: skip
            scores |= judged
            if errors:
                output["judge_errors"] = errors
                return Scored(scores, False, output, outcome="judge_error")
            passed = passed and judged["faithfulness"] >= 0.5
        return Scored(scores, passed, output)

    def close(self) -> None:
        async def shut() -> None:
            await self.stack.aclose()
            if self.judge is not None:
                await self.judge.aclose()

        try:
            self.loop.run_until_complete(shut())
        finally:
            self.loop.close()
