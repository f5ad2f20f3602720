"""The request path's arrows point one way: intake (the Slack listeners, the Alertmanager
webhook) validates, records a job and acks; workers take jobs and run the agent; renderers
turn results into Slack messages. Intake never imports a worker or the agent, workers
never import intake, and rendering imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTAKE = ["bot/slack/intake.py", "bot/alertmanager/webhook.py"]
WORKERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bot" / "work").glob("*.py"))
RENDERING = ["bot/slack/render.py", "bot/slack/delivery.py", "bot/slack/eval_report.py"]
WORKER_MODULES = ("bot.work.answering", "bot.work.triage", "bot.work.workers",
                  "bot.work.lookups", "bot.work.evals", "bot.deploys.service",
                  "bot.deploys.execute")  # fmt: skip


def imports(path: str) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", INTAKE)
def test_intake_records_jobs_and_never_runs_them(path: str) -> None:
    wrong = {m for m in imports(path) if m.startswith(("bot.agent", *WORKER_MODULES))}
    assert not wrong, f"{path} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", WORKERS)
def test_workers_never_import_intake(path: str) -> None:
    wrong = {m for m in imports(path) if m in ("bot.slack.intake", "bot.alertmanager.webhook")}
    assert not wrong, f"{path} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", RENDERING)
def test_rendering_imports_neither_intake_nor_workers(path: str) -> None:
    banned = ("bot.slack.intake", "bot.alertmanager.webhook", *WORKER_MODULES)
    wrong = {m for m in imports(path) if m.startswith(banned)}
    assert not wrong, f"{path} imports {sorted(wrong)}"
