"""The tools suite with a model configured: each case also goes to the model planner the
agent uses (``plan_with_model``, tools bound), scored as model_tool_accuracy and
model_call_accuracy beside the deterministic planner's; a failing model is an error, and
enough errors make the run invalid. A scripted chat model stands in for the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage

import evals.scorers as scorers
from bot.settings import Settings
from evals import runner
from evals.runner import RunOptions, run_suite
from evals.store import EvalStore
from evals.suite import load_suite
from tests.fake_chat import ScriptedChatModel

CONFIG = """name: mini
kind: tools
description: tool choice with a model planner
splits:
  dev: {cases: dev.yaml}
  heldout: {cases: dev.yaml}
metrics:
  tool_accuracy: {tolerance: 0.05}
  call_accuracy: {tolerance: 0.05}
  model_tool_accuracy: {tolerance: 0.05}
  model_call_accuracy: {tolerance: 0.05}
"""
CASES = """cases:
  - id: firing
    message: which alerts are firing right now?
    expect: {tool: firing_alerts}
  - id: deploy
    message: deploy summarizer v3 to staging
    expect: {tool: deploy_model, args: {model: summarizer, version: v3, env: staging}}
"""


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"c-{name}"}])


@pytest.fixture(autouse=True)
def mini_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "suites"
    (root / "mini").mkdir(parents=True)
    (root / "mini" / "suite.yaml").write_text(CONFIG)
    (root / "mini" / "dev.yaml").write_text(CASES)
    monkeypatch.setattr(runner, "load_suite", lambda name: load_suite(name, root))


def test_without_a_model_only_the_deterministic_planner_is_scored(store: EvalStore) -> None:
    run = run_suite("mini", store, RunOptions(settings=Settings()))
    assert run.metrics["tool_accuracy"]["value"] == 1.0
    assert run.metrics["model_tool_accuracy"]["status"] == "no cases"


def test_a_configured_model_planner_is_scored_beside_the_deterministic_one(
    store: EvalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ScriptedChatModel(script=[
        call("firing_alerts"),
        call("deploy_model", model="summarizer", version="v2", env="staging"),  # wrong version
    ])  # fmt: skip
    monkeypatch.setattr(scorers, "planner_model", lambda settings: model)
    run = run_suite("mini", store, RunOptions(settings=Settings()))
    assert run.id is not None
    assert run.metrics["model_tool_accuracy"]["value"] == 1.0
    assert run.metrics["model_call_accuracy"]["value"] == 0.5
    assert run.metrics["call_accuracy"]["value"] == 1.0  # the deterministic planner's
    assert "deploy_model" in model.bound_tools and len(model.calls) == 2
    deploy = next(c for c in store.cases(run.id) if c.case_id == "deploy")
    assert deploy.output["model"]["args"]["version"] == "v2"


def test_a_model_that_is_down_makes_errors_and_an_invalid_run(
    store: EvalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = openai.APIConnectionError(request=httpx.Request("POST", "http://model.invalid/v1"))
    model = ScriptedChatModel(script=[down, down])
    monkeypatch.setattr(scorers, "planner_model", lambda settings: model)
    run = run_suite("mini", store, RunOptions(settings=Settings()))
    assert run.status == "invalid" and run.counts["error"] == 2
