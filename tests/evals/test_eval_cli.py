"""``opsbot eval`` as a user types it: list, run, report, baseline, and the errors a wrong
run id or a missing extra gives (a clear line and exit 2, or a run marked ``error``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from evals.runner import run_suite
from evals.store import EvalStore

SUITES = {"answers", "logs", "metrics", "model", "questions", "retrieval", "tools", "triage"}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("OPSBOT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_list_run_report_and_baseline(cli: CliRunner) -> None:
    listed = cli.invoke(app, ["eval", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    suites = {json.loads(line)["suite"]: json.loads(line) for line in listed.output.splitlines()}
    assert set(suites) == SUITES
    assert all(s["splits"] == ["dev", "heldout"] for s in suites.values())

    first = cli.invoke(app, ["eval", "run", "tools", "--json"])
    assert first.exit_code == 0, first.output
    run = json.loads(first.output.splitlines()[-1])
    assert run["suite"] == "tools" and run["split"] == "dev" and run["status"] == "passed"
    assert run["metrics"]["tool_accuracy"]["value"] >= run["metrics"]["tool_accuracy"]["threshold"]

    report = cli.invoke(app, ["eval", "report", "--json"])
    assert report.exit_code == 0 and json.loads(report.output)["run"] == run["run"]
    by_suite = cli.invoke(app, ["eval", "report", "--suite", "tools"])
    assert by_suite.exit_code == 0 and f"eval #{run['run']} tools (dev)" in by_suite.output

    marked = cli.invoke(app, ["eval", "baseline", str(run["run"])])
    assert marked.exit_code == 0 and "baseline of tools (dev)" in marked.output
    second = cli.invoke(app, ["eval", "run", "tools", "--json"])
    compared = json.loads(second.output.splitlines()[-1])["comparison"]
    assert compared["baseline"] == run["run"]  # the marked baseline, without --baseline
    assert compared["metrics"]["tool_accuracy"]["diff"] == 0  # the same code on the same cases


def test_unknown_runs_and_a_baseline_of_another_suite_are_refused(cli: CliRunner) -> None:
    assert cli.invoke(app, ["eval", "report"]).output.strip() == "error: no eval runs yet"
    missing = cli.invoke(app, ["eval", "report", "999"])
    assert missing.exit_code == 2 and "no such eval run" in missing.output
    assert cli.invoke(app, ["eval", "baseline", "999"]).exit_code == 2
    unknown = cli.invoke(app, ["eval", "run", "tools", "--baseline", "999"])
    assert unknown.exit_code == 2 and "no eval run #999" in unknown.output
    done = json.loads(cli.invoke(app, ["eval", "run", "tools", "--json"]).output.splitlines()[-1])
    other = cli.invoke(app, ["eval", "run", "questions", "--baseline", str(done["run"])])
    assert other.exit_code == 2 and "of the tools suite, not of questions" in other.output
    assert cli.invoke(app, ["eval", "run", "nosuch"]).exit_code == 2


def test_a_suite_scored_with_ragas_says_which_extra_it_needs(
    store: EvalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ragas" else real(name, *a)
    )
    run = run_suite("tools", store)
    assert run.status == "error" and "pip install 'opsbot[evals]'" in (run.error or "")
