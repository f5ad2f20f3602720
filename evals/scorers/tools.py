"""Tool choice: a message → the tool calls the agent makes, from the deterministic planner
the bot uses with no model (``bot.agent.planner.plan_deterministic``). A case checks the
tool and the arguments it names, normalised so that equal things compare equal
(durations by length, PromQL by its text without spaces, names case-insensitively)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.agent.planner import plan_deterministic
from evals.cases import CaseBase, load_cases
from evals.scorers import Scored
from evals.suite import Split, Suite
from tools.base import ToolContext
from tools.metrics.durations import parse_duration
from tools.metrics.question import question_range


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str | None
    args: dict[str, Any] = {}


class ToolsCase(CaseBase):
    message: str
    attachments: list[str] = []
    expect: Expected


def normalise(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("range", "step", "minutes"):
        try:
            return parse_duration(str(value))
        except Exception:
            return str(value)
    if key == "promql":
        return re.sub(r"\s+", "", str(value))
    if isinstance(value, str):
        return value.strip().lower()
    return value


def effective(tool: str | None, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the tool will use them: a metric question's window is read from
    its words when the call gives none (``tools.metrics.question.question_range``)."""
    if tool == "metrics_question" and not args.get("range"):
        found = question_range(str(args.get("question", "")))
        if found:
            args["range"] = found
    return args


def context() -> ToolContext:
    """Every integration configured (the planner offers a tool only when it can run)."""
    configured = SimpleNamespace(url="http://prometheus.invalid:9090")
    return ToolContext(index_dir=Path("/nonexistent"),
                       embedding_model="all-MiniLM-L6-v2", prometheus=configured,
                       alertmanager=configured, loki=configured, deploys=object())  # fmt: skip


class ToolsScorer:
    def __init__(self, suite: Suite, split: Split) -> None:
        self.spec = suite.split(split)
        self.path = suite.path(self.spec.cases)
        self.ctx = context()

    def cases(self) -> list[ToolsCase]:
        return load_cases(self.path, ToolsCase, self.spec.key)

    def score(self, case: ToolsCase) -> Scored:
        calls = plan_deterministic(case.message, attachments=case.attachments or None,
                                   ctx=self.ctx)  # fmt: skip
        answers = [c for c in calls if c["name"] not in ("answer",)]
        chosen = answers[0] if answers else None
        name = chosen["name"] if chosen else None
        args = effective(name, dict(chosen["args"]) if chosen else {})
        tool_ok = name == case.expect.tool
        wrong = [k for k, v in case.expect.args.items()
                 if normalise(k, args.get(k)) != normalise(k, v)]  # fmt: skip
        args_ok = tool_ok and not wrong
        output = {"tool": name, "args": {k: str(v)[:200] for k, v in args.items()},
                  "wrong_args": wrong}  # fmt: skip
        return Scored({"tool_accuracy": float(tool_ok), "call_accuracy": float(args_ok)},
                      args_ok, output)  # fmt: skip

    def close(self) -> None:
        return None
