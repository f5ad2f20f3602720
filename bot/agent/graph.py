"""The agent graph: plan → tools → (plan again while a model wants more) → compose.

One graph serves both modes. The planner node asks a tool-calling model when one assists,
otherwise the deterministic planner; both emit an AIMessage with tool calls, run by the same
tool node, and the same composer builds the answer from the evidence.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, interrupt

from bot import metrics
from bot.agent.answer import Answer, keep_cited, number_evidence
from bot.agent.context import AgentContext
from bot.agent.llm import describe_failure
from bot.agent.planner import plan_deterministic, plan_with_model
from bot.agent.prompts import render_prompt
from bot.agent.state import AgentState
from tools.base import ToolResult
from tools.registry import all_tools, run_tool


def _last_ai(state: AgentState) -> AIMessage | None:
    for message in reversed(state.get("messages", [])):
        if isinstance(message, AIMessage):
            return message
        if isinstance(message, HumanMessage):
            return None
    return None


async def plan(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    rounds = state.get("rounds", 0)
    notes = list(state.get("notes", []))
    if ctx.model is not None and ctx.assist and not request.get("tool"):
        if rounds >= ctx.max_tool_rounds:
            return {"rounds": rounds}
        try:
            with metrics.model_call("plan"):
                reply = await plan_with_model(ctx.model, state["messages"], ctx=ctx.tools)
            return {"messages": [reply], "rounds": rounds + 1}
        except Exception as exc:  # the model failing must never lose the answer
            notes.append(describe_failure(exc, ctx.model))
    if state.get("results"):  # the deterministic planner plans one round
        return {"rounds": rounds, "notes": notes}
    calls = plan_deterministic(
        request["question"],
        request.get("context"),
        request.get("tool"),
        request.get("attachments") or [],
        fresh_attachment=bool(request.get("new_attachments")),
        tool_args=request.get("tool_args"),
        ctx=ctx.tools,
    )
    return {"messages": [AIMessage("", tool_calls=calls)], "rounds": rounds + 1, "notes": notes}


def after_plan(state: AgentState) -> str:
    """Run tools when the planner has just asked for some; otherwise answer."""
    last = state["messages"][-1] if state.get("messages") else None
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else "compose"


def is_write(name: str) -> bool:
    spec = all_tools().get(name)
    return spec is not None and not spec.read_only


async def run_tools(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the last planned calls. Write tools first wait for one human decision.

    The interrupt comes before any tool runs: on resume LangGraph runs this node again
    from the top, so nothing before the interrupt may have an effect.
    """
    last = _last_ai(state)
    assert last is not None
    writes = [
        {"tool": c["name"], "args": c["args"]} for c in last.tool_calls if is_write(c["name"])
    ]
    requester = state["request"].get("user", "")
    decision = interrupt({"calls": writes, "requested_by": requester}) if writes else None
    results: list[ToolResult] = []
    messages: list[ToolMessage] = []
    tools_ctx = copy.copy(runtime.context.tools)  # shares the loaded index
    tools_ctx.files = tuple(state.get("attachments") or state["request"].get("attachments") or ())
    for call in last.tool_calls:
        if is_write(call["name"]):
            result = await asyncio.to_thread(
                _run_approved, call["name"], call["args"], decision, requester, runtime.context
            )
        elif refusal := over_budget(call["name"], state["request"], runtime.context):
            result = ToolResult(tool=call["name"], status="error", message=refusal)
        else:
            started = time.monotonic()
            result = await asyncio.to_thread(run_tool, call["name"], call["args"], tools_ctx)
            metrics.TOOL_DURATION.labels(call["name"]).observe(time.monotonic() - started)
        metrics.TOOL_CALLS.labels(call["name"], result.status).inc()
        results.append(result)
        messages.append(
            ToolMessage(
                content=json.dumps(result.model_dump(exclude_none=True, exclude={"report"}))[:8000],
                tool_call_id=call["id"] or "",
                name=call["name"],
                status="error" if result.status == "error" else "success",
            )
        )
    return {
        "messages": messages,
        "results": [*state.get("results", []), *(r.model_dump() for r in results)],
    }


def over_budget(name: str, request: Any, ctx: AgentContext) -> str | None:
    """Why a person may not run ``name`` now (their budget for its group is spent)."""
    spec = all_tools().get(name)
    if spec is None or ctx.limits is None or request.get("source") == "alertmanager":
        return None
    return ctx.limits.refusal(spec.rate_group, request.get("user", ""))


def approval_refusal(decision: Any, requester: str) -> str | None:
    """Why a decision does not approve a change, or None when it does.

    It must say approved, name the approver, and the approver may not be the requester.
    (Who may approve at all is the approval flow's check, before it resumes the graph.)
    """
    if not isinstance(decision, dict) or decision.get("approved") is not True:
        who = decision.get("by") if isinstance(decision, dict) else None
        return f"rejected by {who}" if who else "not approved"
    approver = decision.get("by")
    if not approver:
        return "an approval must name its approver"
    if approver == requester:
        return f"{approver} asked for it and cannot approve it too"
    return None


def _run_approved(
    name: str, args: dict[str, Any], decision: Any, requester: str, ctx: AgentContext
) -> ToolResult:
    """Run a write tool only after an approval that ``approval_refusal`` accepts."""
    if refusal := approval_refusal(decision, requester):
        return ToolResult(tool=name, status="error", message=f"{name} did not run: {refusal}.")
    spec = all_tools()[name]
    if "request_id" in spec.args_schema.model_fields and isinstance(decision, dict):
        args = {**args, "request_id": decision.get("request_id")}  # the approved request
    try:
        return spec.run(spec.args_schema.model_validate(args), ctx.tools)
    except ValueError as exc:
        return ToolResult(tool=name, status="error", message=f"bad arguments for {name}: {exc}")


async def compose(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    results = [ToolResult.model_validate(r) for r in state.get("results", [])]
    notes = list(state.get("notes", []))
    answer = Answer(
        question=request["question"], evidence=number_evidence(results), results=results
    )
    if ctx.model is not None and ctx.assist and answer.evidence and not notes:
        try:
            answer.summary, dropped = await summarise(ctx, answer)
            if dropped:
                notes.append(
                    f"{dropped} sentence(s) of the model's summary cited no evidence "
                    "and were dropped"
                )
        except Exception as exc:  # a failing summary must never lose the evidence answer
            notes.append(describe_failure(exc, ctx.model))
    answer.notes = notes
    topic = state.get("topic", "")
    if not request.get("context") and answer.evidence:  # a self-contained question
        topic = request["question"]
    return {
        "answer": answer.model_dump(),
        "notes": notes,
        "topic": topic,
        "messages": [AIMessage(answer.as_text())],
    }


async def summarise(ctx: AgentContext, answer: Answer) -> tuple[str | None, int]:
    assert ctx.model is not None
    listing = "\n".join(f"[{ev.id}] {ev.where} ({ev.source}):\n{ev.text}" for ev in answer.evidence)
    rca_only = all(r.tool == "log_rca" for r in answer.results if r.evidence)
    name = "rca_summary" if answer.evidence and rca_only else "summary"
    prompt = render_prompt(name, question=answer.question, evidence=listing)
    with metrics.model_call("summary"):
        reply = await ctx.model.ainvoke([SystemMessage(prompt)])
    text, dropped = keep_cited(str(reply.content), {ev.id for ev in answer.evidence})
    return (text or None), dropped


def build_graph(
    checkpointer: Checkpointer = None,
) -> CompiledStateGraph[AgentState, AgentContext, AgentState, AgentState]:
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("plan", plan)
    graph.add_node("tools", run_tools)
    graph.add_node("compose", compose)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", after_plan, {"tools": "tools", "compose": "compose"})
    graph.add_edge("tools", "plan")
    graph.add_edge("compose", END)
    return graph.compile(checkpointer=checkpointer)
