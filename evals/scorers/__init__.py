"""One scorer per suite kind: it prepares what its cases run against (an index, a
Prometheus), runs each case through the bot's real code and scores it."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evals.cases import CaseBase
from evals.suite import Split, Suite

#: Suite kinds scored with ragas (the evals extra; the runtime image installs no extras).
RAGAS_KINDS = frozenset({"tools", "answers"})


@dataclass
class Scored:
    """One case's per-metric scores (only the metrics that apply to it), whether it passed,
    and what the pipeline said (for reports)."""

    scores: dict[str, float]
    passed: bool
    output: dict[str, Any] = field(default_factory=dict)
    #: an outcome other than pass/fail, e.g. ``judge_error`` (its other scores still count)
    outcome: str | None = None


class Scorer(Protocol):
    def cases(self) -> Sequence[CaseBase]: ...

    def score(self, case: Any) -> Scored: ...

    def close(self) -> None: ...


def make_scorer(
    suite: Suite, split: Split, work: Path, *, prometheus_url: str | None = None,
    model: str | None = None, registry: Any = None, settings: Any = None, judge: Any = None,
) -> Scorer:  # fmt: skip
    kind = suite.config.kind
    if kind in RAGAS_KINDS and importlib.util.find_spec("ragas") is None:
        raise RuntimeError(
            f"the {suite.name} suite scores with ragas, which is not installed "
            "here: install the evals extra (pip install 'opsbot[evals]')"
        )
    if kind == "logs":
        from evals.scorers.logs import LogsScorer

        return LogsScorer(suite, split)
    if kind == "answers":
        from evals.scorers.answers import AnswersScorer

        return AnswersScorer(suite, split, work, settings=settings, judge=judge)
    if kind == "retrieval":
        from evals.scorers.retrieval import RetrievalScorer

        return RetrievalScorer(suite, split, work)
    if kind == "metrics":
        from evals.scorers.metrics import MetricsScorer

        return MetricsScorer(suite, split, work, url=prometheus_url)
    if kind == "triage":
        from evals.scorers.triage import TriageScorer

        return TriageScorer(suite, split, work, prometheus_url)
    if kind == "model":
        from evals.scorers.model import ModelScorer

        return ModelScorer(suite, split, work, target=model, registry=registry)
    from evals.scorers.tools import ToolsScorer

    return ToolsScorer(suite, split, chat_model=planner_model(settings))


def planner_model(settings: Any) -> Any:
    """The agent's tool-calling model when one is configured and assists, else None."""
    if settings is None or not settings.llm.assists:
        return None
    from bot.agent.llm import make_chat_model

    return make_chat_model(settings.llm)
