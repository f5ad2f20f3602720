"""Tool choice: a message → the tool calls the agent makes, from the deterministic planner
the bot uses with no model (``bot.agent.planner.plan_deterministic``). A case checks the
tool and the arguments it names, normalised so that equal things compare equal
(durations by length, PromQL by its text without spaces, names case-insensitively).

Beside our own ``tool_accuracy`` and ``call_accuracy``, ragas' ``ToolCallAccuracy`` and
``ToolCallF1`` (non-LLM) score the same calls: both sides carry the normalised key
arguments the case names (F1 compares whole calls, so an argument the case does not name
would make every call differ). A case that expects no tool scores 1 when none is called.

With a tool-calling model configured (``OPSBOT_LLM_URL``, and the model assists: see
``LLMSettings.assists``), each case is also asked of the model planner the agent then uses
(``bot.agent.planner.plan_with_model``), scored the same way as ``model_tool_accuracy``
and ``model_call_accuracy``; a model request that fails is the case's ``error``.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.agent.planner import plan_deterministic
from evals.cases import CaseBase
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


async def ragas_scores(
    name: str | None, args: dict[str, Any], expect: Expected
) -> dict[str, float]:
    """ragas' ToolCallAccuracy and ToolCallF1 of the call made against the one expected
    (ragas' telemetry is off: ``evals.judge``, imported by the runner, says so first)."""
    from ragas.messages import AIMessage, HumanMessage, ToolCall
    from ragas.metrics.collections import ToolCallAccuracy, ToolCallF1

    if expect.tool is None:
        right = float(name is None)
        return {"ragas_tool_call_accuracy": right, "ragas_tool_call_f1": right}
    keys = list(expect.args)
    made = [ToolCall(name=name, args={k: str(normalise(k, args.get(k))) for k in keys})
            ] if name else []  # fmt: skip
    wanted = [
        ToolCall(name=expect.tool, args={k: str(normalise(k, v)) for k, v in expect.args.items()})
    ]
    messages: list[Any] = [HumanMessage(content="-"), AIMessage(content="", tool_calls=made)]
    with warnings.catch_warnings():  # "No tool calls found": a case where none was made
        warnings.simplefilter("ignore", UserWarning)
        accuracy = await ToolCallAccuracy().ascore(user_input=messages, reference_tool_calls=wanted)
        f1 = await ToolCallF1().ascore(user_input=messages, reference_tool_calls=wanted)
    return {"ragas_tool_call_accuracy": round(float(accuracy.value), 4),
            "ragas_tool_call_f1": round(float(f1.value), 4)}  # fmt: skip


def match_call(case: ToolsCase, calls: list[Any]) -> tuple[str | None, dict[str, Any], bool, bool]:
    """The first tool call of ``calls`` against the case: (tool, effective arguments,
    right tool, right tool and key arguments)."""
    answers = [c for c in calls if c["name"] not in ("answer",)]
    chosen = answers[0] if answers else None
    name = chosen["name"] if chosen else None
    args = effective(name, dict(chosen["args"]) if chosen else {})
    tool_ok = name == case.expect.tool
    wrong = [k for k, v in case.expect.args.items() if normalise(k, args.get(k)) != normalise(k, v)]
    return name, args, tool_ok, tool_ok and not wrong


class ToolsScorer:
    def __init__(self, suite: Suite, split: Split, *, chat_model: Any = None) -> None:
        self.spec = suite.split(split)
        self.suite, self.split_name = suite, split
        self.ctx = context()
        self.chat_model = chat_model  # the model planner's, when one is configured
        self.name = (f"deterministic + {getattr(chat_model, 'model_name', 'model')}"
                     if chat_model is not None else "deterministic (no model)")  # fmt: skip

    def cases(self) -> list[ToolsCase]:
        return self.suite.load(self.split_name, ToolsCase)

    def score(self, case: ToolsCase) -> Scored:
        calls = plan_deterministic(case.message, attachments=case.attachments or None,
                                   ctx=self.ctx)  # fmt: skip
        name, args, tool_ok, args_ok = match_call(case, calls)
        output: dict[str, Any] = {"tool": name, "args": {k: str(v)[:200] for k, v in args.items()}}
        scores = {"tool_accuracy": float(tool_ok), "call_accuracy": float(args_ok)}
        scores |= asyncio.run(ragas_scores(name, args, case.expect))
        if self.chat_model is not None:
            from langchain_core.messages import HumanMessage

            from bot.agent.planner import plan_with_model

            reply = asyncio.run(plan_with_model(self.chat_model, [HumanMessage(case.message)],
                                                ctx=self.ctx))  # fmt: skip
            m_name, m_args, m_tool_ok, m_args_ok = match_call(case, list(reply.tool_calls))
            output["model"] = {"tool": m_name,
                               "args": {k: str(v)[:200] for k, v in m_args.items()}}  # fmt: skip
            scores |= {"model_tool_accuracy": float(m_tool_ok),
                       "model_call_accuracy": float(m_args_ok)}  # fmt: skip
        return Scored(scores, args_ok, output)

    def close(self) -> None:
        return None
