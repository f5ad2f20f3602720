"""The answers suite through the bot's real agent and index: non-judged metrics with no
judge and judged ones reading "not judged"; the judge wiring against a scripted
OpenAI-compatible judge (its scores prove the wiring, never quality); a judge that answers
garbage or is down makes its cases ``judge_error`` and the run invalid, with the other
metrics still reported."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.eval_cli import report_record
from evals import runner
from evals.judge import JudgeConfig
from evals.runner import RunOptions, run_suite
from evals.scorers.answers import Context, context_ids, id_precision_recall
from evals.store import EvalStore
from evals.suite import SUITES, load_suite
from tests.judge_standin import MODEL, judge_server

JUDGED = ("faithfulness", "answer_relevancy", "context_precision")


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The answers suite with the first 4 dev cases (the judge tests need no more)."""
    import yaml

    root = tmp_path / "suites" / "answers"
    root.mkdir(parents=True)
    (root / "suite.yaml").write_text((SUITES / "answers" / "suite.yaml").read_text())
    cases = yaml.safe_load((SUITES / "answers" / "dev.yaml").read_text())["cases"][:4]
    (root / "dev.yaml").write_text(yaml.safe_dump({"cases": cases}))
    (root / "heldout.yaml").write_text(yaml.safe_dump({"cases": cases}))
    monkeypatch.setattr(runner, "load_suite", lambda name: load_suite(name, root.parent))
    return "answers"


def answered_of(store: EvalStore, run_id: int | None) -> int:
    """Cases the bot answered (a question it found nothing for is not sent to the judge)."""
    assert run_id is not None
    return sum(bool(r.output.get("response")) for r in store.cases(run_id))


def test_context_ids_match_reference_sections_by_heading_path() -> None:
    refs = [Context(runbook="k/Pod.md", section="Check recent deploys")]
    cited = [("k/Pod.md", "Diagnosis > Check recent deploys"), ("k/Pod.md", "Mitigation"),
             ("other.md", "Check recent deploys")]  # fmt: skip
    ids = context_ids(cited, refs)
    assert ids == ["k/Pod.md#Check recent deploys", "k/Pod.md#Mitigation",
                   "other.md#Check recent deploys"]  # fmt: skip
    assert id_precision_recall(ids, ["k/Pod.md#Check recent deploys"]) == (0.3333, 1.0)
    assert id_precision_recall([], ["a#b"]) == (0.0, 0.0)


def test_the_answers_suite_without_a_judge_reports_judged_metrics_as_not_judged(
    store: EvalStore,
) -> None:
    run = run_suite("answers", store, RunOptions())
    assert run.id is not None
    assert run.status == "passed", run.metrics
    assert run.judge == ""
    rows = store.cases(run.id)
    answered = sum(bool(r.output["response"]) for r in rows)
    assert answered >= 20  # the bot quotes a runbook for nearly every on-topic question
    for name in ("id_context_recall", "id_context_precision"):
        metric = run.metrics[name]
        assert metric["cases"] == 24 and 0.0 <= metric["value"] <= 1.0, (name, metric)
    for name in ("rouge_l", "chrf"):  # scored where there is an answer
        metric = run.metrics[name]
        assert metric["cases"] == answered and 0.0 <= metric["value"] <= 1.0, (name, metric)
    record = report_record(run)
    for name in JUDGED:
        assert record["metrics"][name]["value"] is None
        assert record["metrics"][name]["status"] == "not judged"
    assert {r.outcome for r in rows} <= {"pass", "fail"}


def test_a_scripted_judge_scores_the_judged_metrics(store: EvalStore, small: str) -> None:
    with judge_server("ok") as judge:
        config = JudgeConfig(url=judge.url, model=MODEL, api_key="sk-secret", max_tokens=3000)
        run = run_suite(small, store, RunOptions(judge=config))
        asked = list(judge.requests)
    assert run.status == "passed", (run.metrics, run.counts)
    assert run.judge.startswith(f"{MODEL} @ http://127.0.0.1:") and "secret" not in run.judge
    for name in JUDGED:
        assert run.metrics[name]["status"] == "scored"
        assert run.metrics[name]["cases"] == answered_of(store, run.id)
    assert asked and all(r["model"] == MODEL and r["max_tokens"] == 3000 for r in asked)
    prompts = " ".join(json.dumps(r["messages"]) for r in asked)
    assert "CrashLoopBackOff" in prompts  # the case's question reached the judge


def test_a_judge_answering_garbage_makes_judge_errors_and_an_invalid_run(
    store: EvalStore, small: str
) -> None:
    with judge_server("garbage") as judge:
        run = run_suite(small, store, RunOptions(judge=JudgeConfig(url=judge.url, model=MODEL)))
    assert run.id is not None
    assert run.status == "invalid"
    assert run.counts["judge_error"] == answered_of(store, run.id) >= 3
    rows = [r for r in store.cases(run.id) if r.output.get("response")]
    assert all("faithfulness" in " ".join(r.output["judge_errors"]) for r in rows)
    assert run.metrics["faithfulness"]["status"] == "judge errors"
    assert run.metrics["rouge_l"]["value"] is not None  # non-judged metrics still reported


def test_a_judge_that_is_down_is_a_judge_error_quickly(store: EvalStore, small: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    down = JudgeConfig(url=f"http://127.0.0.1:{port}/v1", model=MODEL, timeout_s=5, retries=0)
    run = run_suite(small, store, RunOptions(judge=down))
    assert run.status == "invalid" and run.counts["judge_error"] == answered_of(store, run.id) >= 3
    assert run.duration_s < 60


def test_the_cli_takes_a_judge_url_and_refuses_a_bad_one(
    tmp_path: Path, small: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import app

    monkeypatch.setenv("OPSBOT_DATA_DIR", str(tmp_path / "data"))
    cli = CliRunner()
    bad = cli.invoke(app, ["eval", "run", small, "--judge", "judge.example:8000"])
    assert bad.exit_code == 2 and "--judge" in bad.output
    with judge_server("ok") as judge:
        done = cli.invoke(app, ["eval", "run", small, "--judge", judge.url, "--json"])
    assert done.exit_code == 0, done.output
    record = json.loads(done.output.strip().splitlines()[-1])
    assert record["judge"].startswith(f"{MODEL} @ ")  # the model the judge server serves
    assert record["metrics"]["faithfulness"]["status"] == "scored"
