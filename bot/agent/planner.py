"""The two planners. Both return LangChain tool calls for the same tool node.

- ``plan_deterministic``: a tool named by a slash command, or the question matched against
  the tools' keywords and descriptions. Works with no model at all.
- ``plan_with_model``: a tool-calling chat model bound to the tool registry.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolCall

from bot.agent.prompts import load_prompt
from tools.base import ToolContext, ToolSpec
from tools.registry import all_tools, langchain_tools

DEFAULT_TOOL = "runbook_search"
WORD = re.compile(r"[a-z0-9]+")
#: A question of at most this many words is read as a follow-up to the thread's topic.
FOLLOW_UP_WORDS = 6
FOLLOW_UP_MARKERS = {"it", "that", "this", "those", "them", "and", "also", "what", "then", "more"}


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def tool_call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=name, args=args, id=f"call_{uuid.uuid4().hex[:12]}", type="tool_call")


def follow_up_context(question: str, topic: str) -> str | None:
    """The thread's topic when ``question`` is a short follow-up ("and what about memory?")."""
    tokens = WORD.findall(question.lower())
    if topic and len(tokens) <= FOLLOW_UP_WORDS and FOLLOW_UP_MARKERS & set(tokens):
        return topic
    return None


def score_tool(spec: ToolSpec, question: str) -> float:
    """Keyword hits count fully, description words a little: enough to route a question."""
    q = words(question)
    return len(q & set(spec.keywords)) + 0.25 * len(q & words(spec.description))


def plan_deterministic(
    question: str,
    context: str | None = None,
    forced_tool: str | None = None,
    attachments: list[str] | None = None,
    fresh_attachment: bool = False,
    tool_args: dict[str, Any] | None = None,
    ctx: ToolContext | None = None,
) -> list[ToolCall]:
    """Tool calls for a question without a model.

    ``context`` is the thread's topic; ``attachments`` the files attached to the
    conversation. A tool that takes a ``file`` is chosen only when there is one, and is
    preferred when a file came with this very message. ``tool_args`` are the arguments of a
    forced tool when the caller parsed them (e.g. `/ops metrics QUERY 1h 30s`). Tools whose
    integration ``ctx`` lacks (no Prometheus configured) are not chosen.
    """
    specs = all_tools()
    if forced_tool and tool_args is not None:
        return [tool_call(forced_tool, dict(tool_args))]
    if not forced_tool:
        # a request in words for a tool that recognises it (by name: the same order in
        # every process, whatever imported the tools first)
        for spec in sorted(specs.values(), key=lambda s: s.name):
            if spec.intent is not None and spec.available(ctx):
                parsed = spec.intent(question)
                if parsed is not None:
                    if attachments and "file" in fields(spec) and not parsed.get("file"):
                        parsed["file"] = attachments[-1]  # the conversation's file
                    return [tool_call(spec.name, parsed)]
    if forced_tool:
        best = specs[forced_tool]
    else:
        askable = [
            s
            for s in specs.values()
            if s.read_only
            and s.available(ctx)
            and (s.query_arg or not required(s))
            and (attachments or "file" not in fields(s))
            and (not fresh_attachment or "file" in fields(s))
        ]
        fallback = askable[0] if fresh_attachment and askable else specs[DEFAULT_TOOL]
        # a tie goes to the specific tool, not the catch-all (and then by name): the
        # choice never depends on the order the tools were imported in
        best = max(sorted(askable, key=lambda s: s.name),
                   key=lambda s: (score_tool(s, question), s.name != DEFAULT_TOOL),
                   default=fallback)  # fmt: skip
        if score_tool(best, question) == 0:
            best = fallback
    args: dict[str, Any] = {best.query_arg: question} if best.query_arg else {}
    if attachments and "file" in fields(best):
        args["file"] = attachments[-1]  # a tool that reads a file prefers it to the text
    if context and "context" in fields(best):
        args["context"] = context
    return [tool_call(best.name, args)]


def required(spec: ToolSpec) -> list[str]:
    return [name for name, f in spec.args_schema.model_fields.items() if f.is_required()]


def fields(spec: ToolSpec) -> dict[str, Any]:
    return dict(spec.args_schema.model_fields)


async def plan_with_model(
    model: BaseChatModel,
    messages: list[AnyMessage],
    *,
    tool_choice: str | None = None,
    ctx: ToolContext | None = None,
) -> AIMessage:
    """Ask a tool-calling model for the next step; its AIMessage carries the tool calls.

    Server failures propagate (the planner node turns them into a note). Calls to tools
    that do not exist are dropped here; arguments are validated by the tool node.
    """
    bound = model.bind_tools(langchain_tools(ctx), tool_choice=tool_choice)
    reply = await bound.ainvoke([SystemMessage(load_prompt("planner")), *messages])
    if not isinstance(reply, AIMessage):
        raise TypeError(f"the model replied with {type(reply).__name__}, not an AIMessage")
    known = all_tools()
    reply.tool_calls = [c for c in reply.tool_calls if c["name"] in known]
    return reply
