"""The agent as the rest of the bot uses it: ask a question in a thread, hear its status,
get an Answer; resume a thread paused for an approval."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from bot.agent.answer import Answer
from bot.agent.checkpoint import open_checkpointer
from bot.agent.context import AgentContext
from bot.agent.graph import build_graph
from bot.agent.llm import make_chat_model
from bot.agent.planner import follow_up_context
from bot.agent.ratelimit import RateLimits
from bot.settings import Settings
from bot.store import Store
from knowledge.index import IndexMismatchError, IndexMissingError
from tools.base import ToolContext
from tools.registry import all_tools

log = logging.getLogger(__name__)
StatusCallback = Callable[[str], Awaitable[None]]


@dataclass
class PendingApproval:
    """The thread is paused until someone approves or rejects the write ``calls``."""

    thread_id: str
    calls: list[dict[str, Any]]  # [{"tool": name, "args": {...}}, ...]
    requested_by: str

    @property
    def summary(self) -> str:
        return ", ".join(f"`{c['tool']}`" for c in self.calls)


class Agent:
    def __init__(self, graph: Any, context: AgentContext) -> None:
        self.graph = graph
        self.context = context
        # One turn at a time per thread: two at once would interleave their checkpoints.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @staticmethod
    def _config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    async def ask(
        self,
        thread_id: str,
        question: str,
        *,
        user: str,
        source: str,
        tool: str | None = None,
        tool_args: dict[str, Any] | None = None,
        attachments: list[str] | None = None,
        on_status: StatusCallback | None = None,
        turn_id: str | None = None,
    ) -> Answer | PendingApproval:
        """Answer ``question`` in the conversation ``thread_id``.

        ``turn_id`` names the turn (the job that asks): asked again with the same id, a
        turn that was cut short (the process died) continues from its last checkpoint, and
        one that finished returns its answer without running again.

        ``tool`` forces a tool (a slash command's); ``tool_args`` are its arguments when the
        caller parsed them, otherwise the question is its query.

        ``attachments`` are files newly attached (names under the uploads folder); the
        thread remembers earlier ones.

        A thread paused for an approval stays paused: the pending request is returned and
        the question is not run, so a reply in the thread never drops an approval.
        """
        async with self._locks[thread_id]:
            snapshot = await self.graph.aget_state(self._config(thread_id))
            if snapshot.interrupts:
                return _pending(thread_id, snapshot.interrupts[0].value)
            values = snapshot.values or {}
            if turn_id and (values.get("request") or {}).get("turn_id") == turn_id:
                if snapshot.next:  # cut short: carry on from the checkpoint
                    log.info("continuing turn %s of %s", turn_id, thread_id)
                    return await self._drive(thread_id, None, on_status)
                if values.get("answer"):
                    return Answer.model_validate(values["answer"])
            turn = self._turn(snapshot, question, user, source, tool, attachments or [])
            turn["request"]["tool_args"] = tool_args
            turn["request"]["turn_id"] = turn_id
            return await self._drive(thread_id, turn, on_status)

    @staticmethod
    def _turn(
        snapshot: Any, question: str, user: str, source: str, tool: str | None, new: list[str]
    ) -> dict[str, Any]:
        values = snapshot.values or {}
        attachments = [*values.get("attachments", []), *new]
        return {
            "messages": [HumanMessage(question)],
            "request": {
                "question": question,
                "context": follow_up_context(question, values.get("topic", "")),
                "user": user,
                "source": source,
                "tool": tool,
                "attachments": attachments,
                "new_attachments": new,
            },
            "attachments": attachments,
            "results": [],
            "rounds": 0,
            "answer": None,
            "notes": [],
        }

    async def paused(self, thread_id: str) -> dict[str, Any] | None:
        """What a paused thread waits for (its interrupt's value), or None."""
        snapshot = await self.graph.aget_state(self._config(thread_id))
        return snapshot.interrupts[0].value if snapshot.interrupts else None

    async def resume(
        self, thread_id: str, decision: dict[str, Any], on_status: StatusCallback | None = None
    ) -> Answer | PendingApproval:
        """Continue a thread paused by an approval request, with the approver's decision."""
        async with self._locks[thread_id]:
            snapshot = await self.graph.aget_state(self._config(thread_id))
            if not snapshot.interrupts:
                raise ValueError(f"thread {thread_id} is not waiting for an approval")
            return await self._drive(thread_id, Command(resume=decision), on_status)

    async def _drive(
        self, thread_id: str, graph_input: Any, on_status: StatusCallback | None
    ) -> Answer | PendingApproval:
        specs = all_tools()
        result: Answer | PendingApproval | None = None
        # Read the stream to its end: leaving early could drop the checkpoint being written.
        async for update in self.graph.astream(
            graph_input, self._config(thread_id), context=self.context, stream_mode="updates"
        ):
            if "__interrupt__" in update:
                result = _pending(thread_id, update["__interrupt__"][0].value)
            if "compose" in update:
                result = Answer.model_validate(update["compose"]["answer"])
            planned = (update.get("plan") or {}).get("messages") or []
            for message in planned:
                if on_status is not None and isinstance(message, AIMessage) and message.tool_calls:
                    texts = [
                        specs[c["name"]].status_text
                        for c in message.tool_calls
                        if c["name"] in specs
                    ]
                    await on_status(", ".join(dict.fromkeys(texts)) or "working…")
        if result is None:
            raise RuntimeError(f"the agent ended thread {thread_id}'s turn without an answer")
        return result

    async def warm_up(self) -> None:
        """Load the runbook index and its model now, not on the first question."""
        try:
            await asyncio.to_thread(lambda: self.context.tools.runbooks)
        except (IndexMissingError, IndexMismatchError) as exc:
            log.warning("%s", exc)

    async def messages(self, thread_id: str) -> list[Any]:
        """The conversation kept for a thread (empty for a new one)."""
        snapshot = await self.graph.aget_state(self._config(thread_id))
        return list(snapshot.values.get("messages", [])) if snapshot.values else []


def _pending(thread_id: str, payload: dict[str, Any]) -> PendingApproval:
    return PendingApproval(thread_id, list(payload["calls"]), str(payload["requested_by"]))


def agent_context(settings: Settings, store: Store | None = None) -> AgentContext:
    return AgentContext(
        tools=ToolContext(
            index_dir=settings.index_dir,
            embedding_model=settings.index.model,
            top_k=settings.index.top_k,
            uploads_dir=settings.uploads_dir,
            loki=settings.loki if settings.loki.url else None,
            prometheus=settings.prometheus if settings.prometheus.url else None,
            alertmanager=settings.alertmanager if settings.alertmanager.url else None,
            charts_dir=settings.data_dir / "charts",
        ),
        limits=RateLimits({"prometheus": settings.prometheus.rate_limit}, store),
        model=make_chat_model(settings.llm),
        assist=settings.llm.assists,
        max_tool_rounds=settings.llm.max_tool_rounds,
    )


@asynccontextmanager
async def open_agent(
    settings: Settings, store: Store | None = None, *, pool_size: int = 4
) -> AsyncIterator[Agent]:
    """An agent with its checkpointer open for the life of the block; with a store, rate
    budgets are kept in its database (shared by replicas)."""
    async with open_checkpointer(settings, pool_size=pool_size) as saver:
        agent = Agent(build_graph(saver), agent_context(settings, store))
        await agent.warm_up()
        yield agent
