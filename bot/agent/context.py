"""What the graph's nodes use at run time: the LangGraph runtime context of each invocation."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from bot.agent.ratelimit import RateLimits
from tools.base import ToolContext


@dataclass
class AgentContext:
    tools: ToolContext
    model: BaseChatModel | None = None
    """The configured chat model, if any."""
    assist: bool = False
    """Whether the model plans tool calls and writes summaries (settings.llm.assists)."""
    max_tool_rounds: int = 3
    limits: RateLimits | None = None
    """Per-person budgets of costly tools; requests from automation are not counted."""
