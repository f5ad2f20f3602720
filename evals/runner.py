"""Running a suite: every case through the bot's own code, scored, stored, aggregated,
compared with the baseline.

Outcomes per case: ``pass | fail | known_fail | judge_error | error | skipped``. A metric's
value is the mean over the cases that scored it; cases that errored are not in that mean,
they are counted and shown with every report, and a run where more than ``MAX_ERROR_SHARE``
of the cases errored is ``invalid`` (never reported as a regression). A regression is a
drop beyond the metric's tolerance whose paired bootstrap 95 % interval excludes zero.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.cases import CaseFileError
from evals.judge import JudgeConfig
from evals.scorers import Scored, make_scorer
from evals.stats import compare, flips, mean_interval
from evals.store import EvalCase, EvalRun, EvalStore
from evals.suite import ROOT, Split, Suite, load_suite

MAX_ERROR_SHARE = 0.02
Progress = Callable[[int, int], None]


@dataclass
class RunOptions:
    split: Split = "dev"
    repeat: int = 1
    baseline: int | None = None
    requested_by: str = ""
    progress: Progress | None = None
    prometheus_url: str | None = None  # the metrics suite's data (default: start it)
    model: str | None = None  # the model suite's target: a URL or NAME@VERSION
    registry: Any = None  # the bot's model registry (for NAME@VERSION)
    judge: JudgeConfig | None = None  # the judged metrics' model (None: "not judged")
    settings: Any = None  # the bot's settings (the answers suite's agent model)


def git_revision() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5, check=False)  # fmt: skip
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def run_suite(name: str, store: EvalStore, options: RunOptions | None = None) -> EvalRun:
    """Run, store and judge one suite; the stored run (status ``error`` when it could not
    run at all, with the reason)."""
    options = options or RunOptions()
    suite = load_suite(name)
    run: EvalRun = store.add(EvalRun(
        suite=name, split=options.split, git_rev=git_revision(), repeat=options.repeat,
        requested_by=options.requested_by, model="deterministic (no model)",
        judge=options.judge.label if options.judge else "",
        settings={"kind": suite.config.kind, "cases": suite.split(options.split).cases},
    ))  # fmt: skip
    assert run.id is not None
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"opsbot-eval-{name}-"))
    try:
        rows = _score_all(suite, options, run.id, work, store)
    except (CaseFileError, OSError, RuntimeError) as exc:
        store.update(run.id, status="error", error=str(exc)[:2000],
                     duration_s=round(time.monotonic() - began, 2))  # fmt: skip
        return store.get(run.id) or run
    finally:
        shutil.rmtree(work, ignore_errors=True)
    store.add_cases(rows)
    judged = judge(suite, rows, store, options)
    store.update(run.id, duration_s=round(time.monotonic() - began, 2), **judged)
    return store.get(run.id) or run


def _score_all(suite: Suite, options: RunOptions, run_id: int, work: Path,
               store: EvalStore) -> list[EvalCase]:  # fmt: skip
    scorer = make_scorer(suite, options.split, work, prometheus_url=options.prometheus_url,
                         model=options.model, registry=options.registry,
                         settings=options.settings, judge=options.judge)  # fmt: skip
    evaluated = getattr(scorer, "name", None)  # the model suite's target, for the report
    if evaluated:
        store.update(run_id, model=str(evaluated)[:300])
    try:
        cases = scorer.cases()
        total, done, rows = len(cases) * options.repeat, 0, []
        for attempt in range(options.repeat):
            for case in cases:
                started = time.perf_counter()
                try:
                    scored = scorer.score(case)
                    verdict = (
                        "pass" if scored.passed else "known_fail" if case.known_fail else "fail"
                    )
                    outcome = scored.outcome or verdict
                except Exception as exc:  # the pipeline failed on this case: counted, shown
                    scored = Scored({}, False, {"error": f"{type(exc).__name__}: {exc}"[:500]})
                    outcome = "error"
                rows.append(EvalCase(run_id=run_id, case_id=case.id, attempt=attempt,
                                     outcome=outcome, scores=scored.scores, output=scored.output,
                                     seconds=round(time.perf_counter() - started, 4)))  # fmt: skip
                done += 1
                if options.progress:
                    options.progress(done, total)
        return rows
    finally:
        scorer.close()


def per_case(rows: list[EvalCase], metric: str) -> dict[str, float]:
    """Each case's score on a metric, averaged over its attempts (--repeat)."""
    values: dict[str, list[float]] = {}
    for row in rows:
        if row.outcome != "error" and metric in row.scores and row.scores[metric] is not None:
            values.setdefault(row.case_id, []).append(float(row.scores[metric]))
    return {case: statistics.fmean(v) for case, v in values.items()}


def aggregate(values: list[float], how: str) -> float | None:
    if not values:
        return None
    if how == "mean":
        return round(statistics.fmean(values), 4)
    if how == "min":
        return round(min(values), 4)
    ordered = sorted(values)
    q = 0.5 if how == "p50" else 0.95
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def passed_by_case(rows: list[EvalCase]) -> dict[str, bool]:
    return {r.case_id: r.outcome == "pass" for r in rows if r.attempt == 0}


def judge(suite: Suite, rows: list[EvalCase], store: EvalStore,
          options: RunOptions) -> dict[str, Any]:  # fmt: skip
    """Aggregates, thresholds, the baseline comparison and the run's status."""
    counts = Counter(r.outcome for r in rows if r.attempt == 0)
    outcomes: dict[str, set[str]] = {}
    for r in rows:
        outcomes.setdefault(r.case_id, set()).add(r.outcome)
    result_counts = {k: counts.get(k, 0) for k in
                     ("pass", "fail", "known_fail", "judge_error", "error", "skipped")}  # fmt: skip
    result_counts["cases"] = len(outcomes)
    result_counts["judge_timeout"] = sum(  # judge errors that were the judge not answering
        r.attempt == 0 and r.outcome == "judge_error" and "no answer in" in str(r.output)
        for r in rows
    )
    result_counts["flaky"] = sum(len(o) > 1 for o in outcomes.values())
    metrics: dict[str, Any] = {}
    for name, spec in suite.config.metrics.items():
        scores = per_case(rows, spec.of or name)
        value = aggregate(list(scores.values()), spec.aggregate)
        ok = None
        if value is not None and spec.threshold is not None:
            ok = value >= spec.threshold if spec.higher_is_better else value <= spec.threshold
        status = ("scored" if value is not None else "no cases" if not spec.judged else
                  "judge errors" if options.judge else "not judged")  # fmt: skip
        metrics[name] = {"value": value, "threshold": spec.threshold, "passed": ok,
                         "cases": len(scores), "status": status}  # fmt: skip
        interval = mean_interval(list(scores.values())) if spec.aggregate == "mean" else None
        if value is not None and interval is not None:
            metrics[name]["ci95"] = [round(interval[0], 4), round(interval[1], 4)]
    baseline = (store.get(options.baseline) if options.baseline
                else store.baseline(suite.name, options.split))  # fmt: skip
    if baseline is not None and baseline.suite != suite.name:  # `all` with one baseline run
        baseline = None
    comparison = _compare(suite, rows, store, baseline) if baseline else {}
    errors = counts.get("error", 0) + counts.get("judge_error", 0)
    if rows and errors / max(1, len(outcomes)) > MAX_ERROR_SHARE:
        status = "invalid"
    elif any(m["passed"] is False for m in metrics.values()):
        status = "failed"
    elif any(c.get("regression") for c in comparison.get("metrics", {}).values()):
        status = "regressed"
    else:
        status = "passed"
    return {"metrics": metrics, "counts": result_counts, "comparison": comparison,
            "status": status}  # fmt: skip


def _compare(suite: Suite, rows: list[EvalCase], store: EvalStore,
             baseline: EvalRun) -> dict[str, Any]:  # fmt: skip
    assert baseline.id is not None
    base_rows = store.cases(baseline.id)
    out: dict[str, Any] = {"baseline": baseline.id, "metrics": {}}
    for name, spec in suite.config.metrics.items():
        score = spec.of or name
        c = compare(name, per_case(base_rows, score), per_case(rows, score))
        if c is None:
            continue
        drop = -c.diff if spec.higher_is_better else c.diff
        out["metrics"][name] = {
            "baseline": round(c.baseline, 4), "diff": round(c.diff, 4),
            "ci95": [round(c.low, 4), round(c.high, 4)], "cases": c.cases,
            "significant": c.significant,
            "regression": c.significant and drop > spec.tolerance,
        }  # fmt: skip
    worse, better = flips(passed_by_case(base_rows), passed_by_case(rows))
    out["pass_to_fail"], out["fail_to_pass"] = worse, better
    return out
