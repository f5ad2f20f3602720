"""Metric questions in words → PromQL, scored on results (evals/suites/metrics/questions.yaml).

Starts the real Prometheus of ``tests.promstack`` over its incident data, reads every
question with the model-free path of ``tools.metrics.question`` and compares what the
generated query returns with what the gold query returns, at the same evaluation time
(same window and step for questions with a range). The suite's questions guided the
method; ``holdout.yaml`` was written apart from it and is the figure to quote. Writes
bench/results/metrics_questions.json ({"suite": ..., "holdout": ...}).

    python -m bench.metrics_questions
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from tools.base import ToolContext
from tools.metrics.client import Prometheus, Sample
from tools.metrics.durations import parse_duration
from tools.metrics.question import question_range, read_question

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "evals" / "suites" / "metrics" / "questions.yaml"
#: Written without seeing the query generator or its results on SUITE: the honest figure.
HOLDOUT = ROOT / "evals" / "suites" / "metrics" / "holdout.yaml"
OUT = ROOT / "bench" / "results" / "metrics_questions.json"
REL_TOL = 1e-3
RANGE_STEP = 60.0


def load_suite(path: Path = SUITE) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["questions"])


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
        if points is None:
            return False
        for t, value in sample.points:
            if t not in points or not _close(points[t], value):
                return False
    return True


def evaluate(client: Prometheus, promql: str, rng: str | None, at: datetime) -> list[Sample]:
    if rng:
        start = at - timedelta(seconds=parse_duration(rng))
        return client.range(promql, start, at, RANGE_STEP)
    return client.instant(promql, at)


def score(url: str, charts: Path, suite: Path = SUITE) -> dict[str, Any]:
    ctx = ToolContext(
        index_dir=charts / "no-index",
        embedding_model="all-MiniLM-L6-v2",
        prometheus=prometheus_settings(url),
        charts_dir=charts,
    )
    client = Prometheus(ctx.prometheus)
    rows: list[dict[str, Any]] = []
    timings: list[float] = []
    read_question(ctx, "warm up the catalog and the embedder", "1h")
    cases = load_suite(suite)
    for case in cases:
        at = datetime.now(UTC) - timedelta(seconds=30)
        began = time.perf_counter()
        reading, closest, _ = read_question(
            ctx, case["question"], question_range(case["question"]) or "1h"
        )
        timings.append(time.perf_counter() - began)
        row: dict[str, Any] = {"id": case["id"], "promql": reading.promql if reading else None}
        if case["expect"] is None:
            row["correct"] = reading is None
            row["closest"] = closest[:3]
        elif reading is None:
            row["correct"] = False
            row["closest"] = closest[:3]
        else:
            rng = case.get("range")
            try:
                got = evaluate(client, reading.promql, rng, at)
            except Exception as exc:  # a wrong query is a wrong answer, not a crash
                got = []
                row["error"] = str(exc)
            row["correct"] = same_result(got, evaluate(client, case["expect"], rng, at))
        rows.append(row)
    answerable = [r for r, c in zip(rows, cases, strict=True) if c["expect"] is not None]
    return {
        "questions": len(rows),
        "correct": sum(r["correct"] for r in rows),
        "share_correct": round(sum(r["correct"] for r in rows) / len(rows), 3),
        "answerable": len(answerable),
        "answerable_correct": sum(r["correct"] for r in answerable),
        "declined_correctly": sum(
            r["correct"] for r, c in zip(rows, cases, strict=True) if c["expect"] is None
        ),
        "read_ms_p50": round(1000 * statistics.median(timings), 1),
        "rows": rows,
    }


def main() -> None:
    from tests.promstack import running_stack

    suites = {"suite": SUITE, "holdout": HOLDOUT}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp) / "stack") as stack:
        for name, path in suites.items():
            if path.exists():
                results[name] = score(stack.url, Path(tmp) / "charts", path)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    for name, result in results.items():
        print(name, json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
        for row in result["rows"]:
            if not row["correct"]:
                print("WRONG", name, row)


if __name__ == "__main__":
    main()
