"""The runner on a suite of its own: stored runs and cases, thresholds, a baseline whose
regression is flagged with its interval and flips, errors counted (an invalid run), and
--repeat measuring flakiness; then the repository's judge-free suites at their thresholds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evals import runner
from evals.runner import RunOptions, run_suite
from evals.scorers.tools import ToolsScorer
from evals.store import EvalStore
from evals.suite import SHARED, load_suite

CONFIG = """name: mini
kind: tools
description: a small suite for the runner's tests
splits:
  dev: {cases: dev.yaml}
  heldout: {cases: dev.yaml}
metrics:
  tool_accuracy: {threshold: 0.5, tolerance: 0.05}
  call_accuracy: {tolerance: 0.05}
"""
CASE = "  - id: c{i}\n    message: {message}\n    expect: {{tool: {tool}}}\n"


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "suites"
    (root / "mini").mkdir(parents=True)
    (root / "mini" / "suite.yaml").write_text(CONFIG)
    monkeypatch.setattr(runner, "load_suite", lambda name: load_suite(name, root))
    return root / "mini"


def cases(folder: Path, right: int, wrong: int) -> None:
    ask = "how do I fix a crash looping pod"
    rows = [CASE.format(i=i, message=ask, tool="runbook_search") for i in range(right)]
    rows += [CASE.format(i=right + i, message=ask, tool="firing_alerts") for i in range(wrong)]
    (folder / "dev.yaml").write_text("cases:\n" + "".join(rows))


def test_a_run_is_stored_with_its_cases_and_a_regression_is_flagged(
    store: EvalStore, suites: Path
) -> None:
    cases(suites, right=30, wrong=0)
    first = run_suite("mini", store, RunOptions())
    assert first.status == "passed" and first.id is not None
    assert first.metrics["tool_accuracy"] == {"value": 1.0, "threshold": 0.5, "passed": True,
                                              "cases": 30, "status": "scored",
                                              "ci95": [1.0, 1.0]}  # fmt: skip
    assert len(store.cases(first.id)) == 30 and first.git_rev
    store.mark_baseline(first.id)

    cases(suites, right=20, wrong=10)  # a third of the cases now expect another tool
    second = run_suite("mini", store, RunOptions())
    compared = second.comparison["metrics"]["tool_accuracy"]
    assert second.status == "regressed" and compared["regression"] and compared["significant"]
    assert compared["diff"] == pytest.approx(-1 / 3, abs=1e-3) and compared["ci95"][1] < 0
    assert second.comparison["baseline"] == first.id
    assert sorted(second.comparison["pass_to_fail"]) == sorted(f"c{i}" for i in range(20, 30))

    cases(suites, right=10, wrong=20)  # under the threshold: failed, whatever the baseline
    assert run_suite("mini", store, RunOptions()).status == "failed"


def test_pipeline_errors_are_counted_and_make_the_run_invalid(
    store: EvalStore, suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases(suites, right=20, wrong=0)
    real = ToolsScorer.score

    def flaky(self: ToolsScorer, case: object) -> object:
        if getattr(case, "id", "") == "c3":
            raise RuntimeError("the planner fell over")
        return real(self, case)  # type: ignore[arg-type]

    monkeypatch.setattr(ToolsScorer, "score", flaky)
    run = run_suite("mini", store, RunOptions(repeat=2))
    assert run.status == "invalid" and run.counts["error"] == 1 and run.counts["cases"] == 20
    assert run.metrics["tool_accuracy"]["cases"] == 19  # the error is not averaged in
    assert run.id is not None
    errored = [c for c in store.cases(run.id) if c.outcome == "error"]
    assert len(errored) == 2 and "fell over" in errored[0].output["error"]


def test_a_missing_case_file_is_an_error_run_not_a_crash(store: EvalStore, suites: Path) -> None:
    run = run_suite("mini", store, RunOptions())
    assert run.status == "error" and "cannot be read" in run.error


def test_the_tools_suite_meets_its_thresholds(store: EvalStore) -> None:
    run = run_suite("tools", store, RunOptions())
    assert run.id is not None
    wrong = [(c.case_id, c.output) for c in store.cases(run.id) if c.outcome != "pass"]
    assert run.status == "passed", (run.metrics, wrong)


def test_the_questions_suite_quotes_on_topic_runbooks_and_abstains_off_topic(
    store: EvalStore,
) -> None:
    run = run_suite("questions", store, RunOptions())
    assert run.id is not None
    assert run.status == "passed", run.metrics
    assert run.metrics["abstain"]["cases"] >= 40 and run.metrics["hit@1"]["cases"] >= 60


def test_the_retrieval_suite_meets_its_thresholds(store: EvalStore) -> None:
    if not (SHARED / "runbooks").is_dir():
        pytest.skip(f"LOUD SKIP: the shared data is not at {SHARED}")
    run = run_suite("retrieval", store, RunOptions())
    assert run.id is not None
    wrong = [(c.case_id, c.output) for c in store.cases(run.id) if c.outcome != "pass"]
    assert run.status == "passed", (run.metrics, wrong)
    assert shutil.which("git") is None or run.git_rev != "unknown"
    # ragas' ID-based context metrics over the first 5 runbooks: one of them answers, so
    # precision is at most 1/5 and recall is hit@5
    m = run.metrics
    assert 0 < m["id_context_precision"]["value"] <= 0.2
    assert m["id_context_recall"]["value"] == m["hit@5"]["value"]
    low, high = m["hit@1"]["ci95"]
    assert low <= m["hit@1"]["value"] <= high and high - low < 0.2  # 133 cases


def test_the_triage_suite_meets_its_thresholds_on_new_and_rising_culprits(
    store: EvalStore,
) -> None:
    if not (SHARED / "loghub" / "HDFS").is_dir():
        pytest.skip(f"LOUD SKIP: the shared Loghub data is not at {SHARED}")
    run = run_suite("triage", store, RunOptions())
    assert run.id is not None
    wrong = [(c.case_id, c.output) for c in store.cases(run.id) if c.outcome != "pass"]
    assert run.status == "passed", (run.metrics, wrong)
    assert run.metrics["top1_new"]["cases"] == run.metrics["top1_rising"]["cases"] > 0
    # the alerts firing on the test Prometheus stack, triaged by the alert_triage tool
    assert run.metrics["alert_runbook"]["cases"] == run.metrics["alert_series"]["cases"] == 5
