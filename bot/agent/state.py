"""The agent's state, one per conversation thread, checkpointed after every step.

Values are plain JSON-able data (dicts, lists, LangChain messages) so that any
checkpointer stores them and an older checkpoint still loads after an upgrade.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class Request(TypedDict, total=False):
    """The turn being answered."""

    question: str  # what the user asked, as typed
    context: str | None  # the thread's topic when the question is a short follow-up
    user: str  # Slack user id, or the local user name in `opsbot chat`
    source: str  # "slack", "cli", ...
    tool: str | None  # a tool named by a slash command; bypasses planning
    tool_args: dict[str, Any] | None  # that tool's arguments, when the caller parsed them
    attachments: list[str]  # names of files attached to the conversation so far
    new_attachments: list[str]  # those that came with this message
    turn_id: str | None  # the job asking; a retried job continues its turn instead of redoing it


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation: questions, tool calls and their results, answers. Kept per thread."""

    request: Request
    """This turn's request."""

    results: list[dict[str, Any]]
    """ToolResult dicts gathered in this turn, in call order."""

    rounds: int
    """Planner rounds taken in this turn (a tool-calling model may loop)."""

    answer: dict[str, Any] | None
    """This turn's Answer (see bot.agent.answer), set by the composer."""

    notes: list[str]
    """Things the user should know about this turn, e.g. that the model was unavailable."""

    topic: str
    """The last self-contained question of the thread: gives short follow-ups their context."""

    attachments: list[str]
    """Files attached to the thread so far (names under the uploads folder)."""
