"""Metric questions in words → PromQL, scored on results: the model-free reading of
``tools.metrics.question`` (what the bot runs) against the gold query, both evaluated on the
same Prometheus at the same time (the same window and step for questions with a range). A
question with ``expect: null`` is right when the bot declines."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from evals.cases import CaseBase
from evals.scorers import Scored
from evals.suite import Split, Suite
from tools.base import ToolContext
from tools.metrics.client import Prometheus, Sample
from tools.metrics.durations import parse_duration
from tools.metrics.question import question_range, read_question

REL_TOL = 1e-3
RANGE_STEP = 60.0


class MetricsCase(CaseBase):
    question: str
    expect: str | None
    range: str | None = None


def prometheus_settings(url: str) -> SimpleNamespace:
    """The fields of bot.settings.PrometheusSettings the tools read, with defaults."""
    from bot.settings import PrometheusSettings

    return SimpleNamespace(**PrometheusSettings(url=url).model_dump())


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def _close(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def same_result(got: list[Sample], gold: list[Sample]) -> bool:
    """Same label sets (``__name__`` ignored) with the same values at the same times."""
    if not gold or len(got) != len(gold):
        return False
    mine = {_key(s.labels): dict(s.points) for s in got}
    for sample in gold:
        points = mine.get(_key(sample.labels))
        if points is None or not _same_points(points, sample.points):
            return False
    return True


def same_answer(got: list[Sample], gold: list[Sample]) -> bool:
    """The same figures as the gold answer: as many series, told apart one to one by the
    label names both sides carry, each with the gold's values. One series each is one
    figure whatever its labels (``sum (x)`` and the one series ``x{pod="a"}``); a
    breakdown may keep labels the other drops (``sum by (instance) (x)`` and the series
    ``x{instance=…, job=…}`` themselves)."""
    if not gold or len(got) != len(gold):
        return False
    if len(gold) == 1:
        return _same_points(dict(got[0].points), gold[0].points)
    shared = set.intersection(*({k for k in s.labels if k != "__name__"} for s in got + gold))
    mine = {_key({k: s.labels[k] for k in shared}): dict(s.points) for s in got}
    theirs = {_key({k: s.labels[k] for k in shared}): s.points for s in gold}
    if len(mine) < len(got) or len(theirs) < len(gold) or mine.keys() != theirs.keys():
        return False  # series the shared labels do not tell apart, or other series
    return all(_same_points(mine[key], points) for key, points in theirs.items())


def _same_points(points: dict[float, float], gold: list[tuple[float, float]]) -> bool:
    return all(t in points and _close(points[t], value) for t, value in gold)


def evaluate(client: Prometheus, promql: str, rng: str | None, at: datetime) -> list[Sample]:
    if rng:
        start = at - timedelta(seconds=parse_duration(rng))
        return client.range(promql, start, at, RANGE_STEP)
    return client.instant(promql, at)


class MetricsScorer:
    """Against ``url``, or the incident data of ``evals/promstack.py`` started for the run
    (the suite's questions are about that data)."""

    def __init__(self, suite: Suite, split: Split, work: Path, url: str | None = None) -> None:
        self.spec = suite.split(split)
        self.suite, self.split_name = suite, split
        self._stack = contextlib.ExitStack()
        if url is None:
            from evals.promstack import running_stack

            url = self._stack.enter_context(running_stack(work / "promstack")).url
        self.ctx = ToolContext(
            index_dir=work / "no-index", embedding_model="all-MiniLM-L6-v2",
            prometheus=prometheus_settings(url), charts_dir=work / "charts",
        )  # fmt: skip
        self.client = Prometheus(self.ctx.prometheus)
        read_question(self.ctx, "warm up the catalog and the embedder", "1h")

    def cases(self) -> list[MetricsCase]:
        return self.suite.load(self.split_name, MetricsCase)

    def score(self, case: MetricsCase) -> Scored:
        at = datetime.now(UTC) - timedelta(seconds=30)
        reading, closest, _ = read_question(
            self.ctx, case.question, question_range(case.question) or "1h"
        )
        output: dict[str, object] = {"promql": reading.promql if reading else None}
        if case.expect is None or reading is None:
            correct = strict = case.expect is None and reading is None
            output["closest"] = closest[:3]
        else:
            try:
                got = evaluate(self.client, reading.promql, case.range, at)
            except Exception as exc:  # a wrong query is a wrong answer, not a crash
                got, output["error"] = [], str(exc)[:300]
            gold = evaluate(self.client, case.expect, case.range, at)
            correct, strict = same_answer(got, gold), same_result(got, gold)
        scores = {"correct": float(correct), "correct_strict": float(strict)}
        scores["answerable_correct" if case.expect else "declined_correctly"] = float(correct)
        return Scored(scores, correct, output)

    def close(self) -> None:
        self._stack.close()
