"""Agent-graph tests: both planners, memory per thread, restarts, approvals, a failing model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from bot.agent.answer import Answer
from bot.agent.context import AgentContext
from bot.agent.service import Agent, PendingApproval, agent_context, open_agent
from bot.settings import Settings
from tests.fake_chat import ScriptedChatModel
from tools.base import ToolContext, ToolResult, register, unregister


def tool_call(name: str, args: dict[str, object], id_: str = "c1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": id_, "type": "tool_call"}])


def with_model(agent: Agent, model: ScriptedChatModel) -> None:
    agent.context.model = model
    agent.context.assist = True


async def test_deterministic_planner_answers_from_runbooks(settings: Settings) -> None:
    statuses: list[str] = []

    async def on_status(text: str) -> None:
        statuses.append(text)

    async with open_agent(settings) as agent:
        answer = await agent.ask(
            "t1",
            "what should I check when pods crash-loop?",
            user="u",
            source="test",
            on_status=on_status,
        )
    assert isinstance(answer, Answer)
    assert statuses == ["searching runbooks…"]
    assert answer.evidence[0].source == "kubernetes/PodCrashLooping.md"
    assert answer.evidence[0].id == "E1"
    assert "PodCrashLooping.md" in answer.as_text()
    assert answer.summary is None  # no model: evidence only


async def test_memory_is_per_thread_and_survives_restart(settings: Settings) -> None:
    async with open_agent(settings) as agent:
        await agent.ask("a", "pods keep crash-looping", user="u", source="test")
        await agent.ask("b", "disk is filling up on a node", user="u", source="test")
        second = await agent.ask("a", "and what about memory?", user="u", source="test")
        assert isinstance(second, Answer)
    # A new process: a new checkpointer on the same file.
    async with open_agent(settings) as agent:
        history_a = await agent.messages("a")
        history_b = await agent.messages("b")
        questions_a = [m.content for m in history_a if isinstance(m, HumanMessage)]
        questions_b = [m.content for m in history_b if isinstance(m, HumanMessage)]
        assert questions_a == ["pods keep crash-looping", "and what about memory?"]
        assert questions_b == ["disk is filling up on a node"]
        third = await agent.ask("a", "what next?", user="u", source="test")
        assert isinstance(third, Answer)
        assert len([m for m in await agent.messages("a") if isinstance(m, HumanMessage)]) == 3


async def test_short_follow_up_inherits_the_thread_topic(settings: Settings) -> None:
    async with open_agent(settings) as agent:
        await agent.ask("t", "my pod was OOMKilled", user="u", source="test")
        follow = await agent.ask("t", "and what then?", user="u", source="test")
    assert isinstance(follow, Answer)
    assert follow.evidence[0].source == "kubernetes/PodOOMKilled.md"


async def test_model_planner_routes_tool_calls_and_summary_cites(settings: Settings) -> None:
    model = ScriptedChatModel(
        script=[
            tool_call("runbook_search", {"query": "TLS certificate expires soon"}),
            AIMessage("Done."),
            AIMessage(
                "Renew the certificate before it expires [E1]. Nobody knows why. "
                "Check cert-manager's status [E9]."
            ),
        ]
    )
    async with open_agent(settings) as agent:
        with_model(agent, model)
        answer = await agent.ask("m", "our cert is about to run out", user="u", source="test")
    assert isinstance(answer, Answer)
    assert "runbook_search" in model.bound_tools
    assert answer.evidence[0].source == "infra/TLSCertificateExpiring.md"
    assert answer.summary == "Renew the certificate before it expires [E1]."
    assert any("2 sentence(s)" in note for note in answer.notes)
    # The model's second round saw the tool result.
    assert any(isinstance(m, ToolMessage) for m in model.calls[1])


async def test_model_down_still_gives_the_evidence_answer(settings: Settings) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    model = ScriptedChatModel(script=[openai.APIConnectionError(request=request)])
    async with open_agent(settings) as agent:
        with_model(agent, model)
        answer = await agent.ask("d", "pods crash-loop after deploy", user="u", source="test")
    assert isinstance(answer, Answer)
    assert answer.evidence[0].source == "kubernetes/PodCrashLooping.md"
    assert any("unavailable" in note for note in answer.notes)
    assert answer.summary is None


async def test_model_calling_an_unknown_tool_or_junk_args_is_contained(settings: Settings) -> None:
    model = ScriptedChatModel(
        script=[
            AIMessage(
                "",
                tool_calls=[
                    {"name": "rm_rf", "args": {}, "id": "x", "type": "tool_call"},
                    {
                        "name": "runbook_search",
                        "args": {"k": "lots"},
                        "id": "y",
                        "type": "tool_call",
                    },
                ],
            ),
            AIMessage("nothing more"),
        ]
    )
    async with open_agent(settings) as agent:
        with_model(agent, model)
        answer = await agent.ask("j", "help", user="u", source="test")
    assert isinstance(answer, Answer)
    assert [r.status for r in answer.results] == ["error"]
    assert "bad arguments for runbook_search" in answer.results[0].message


async def test_missing_index_tells_how_to_build_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", index={"dir": tmp_path / "none"})  # type: ignore[arg-type]
    async with open_agent(settings) as agent:
        answer = await agent.ask("x", "pods crash-loop", user="u", source="test")
    assert isinstance(answer, Answer)
    assert "opsbot index" in answer.headline


class RestartInput(BaseModel):
    service: str


RUNS: list[str] = []


def restart_service(args: RestartInput, ctx: ToolContext) -> ToolResult:
    RUNS.append(args.service)
    return ToolResult(tool="test_restart_service", status="ok", message=f"restarted {args.service}")


@pytest.fixture
def write_tool() -> Iterator[str]:
    """A tool that changes things, registered for one test only."""
    RUNS.clear()
    register(
        name="test_restart_service",
        description="Restart a service (test tool that changes things).",
        args_schema=RestartInput,
        status_text="restarting…",
        read_only=False,
    )(restart_service)
    yield "test_restart_service"
    unregister("test_restart_service")


def restart(*services: str) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[
            {
                "name": "test_restart_service",
                "args": {"service": s},
                "id": f"c{i}",
                "type": "tool_call",
            }
            for i, s in enumerate(services)
        ],
    )


async def test_write_tool_waits_for_approval_across_a_restart(
    settings: Settings, write_tool: str
) -> None:
    async with open_agent(settings) as agent:
        with_model(agent, ScriptedChatModel(script=[restart("checkout")]))
        pending = await agent.ask("w", "restart checkout", user="alice", source="test")
    assert isinstance(pending, PendingApproval)
    assert pending.calls == [{"tool": write_tool, "args": {"service": "checkout"}}]
    assert pending.requested_by == "alice"
    assert RUNS == []  # the model asking is not enough
    async with open_agent(settings) as agent:  # restarted
        with_model(agent, ScriptedChatModel(script=[AIMessage("ok")]))
        done = await agent.resume("w", {"approved": True, "by": "bob"})
    assert isinstance(done, Answer)
    assert RUNS == ["checkout"], done.results
    assert done.results[0].message == "restarted checkout"


async def test_two_writes_in_one_plan_run_once_each_after_one_approval(
    settings: Settings, write_tool: str
) -> None:
    async with open_agent(settings) as agent:
        with_model(agent, ScriptedChatModel(script=[restart("api", "db"), AIMessage("ok")]))
        pending = await agent.ask("two", "restart api and db", user="alice", source="test")
        assert isinstance(pending, PendingApproval) and len(pending.calls) == 2
        done = await agent.resume("two", {"approved": True, "by": "bob"})
    assert isinstance(done, Answer)
    assert RUNS == ["api", "db"]


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        ({"approved": False, "by": "bob"}, "rejected by bob"),
        ({"approved": True, "by": "alice"}, "alice asked for it and cannot approve it too"),
        ({"approved": True}, "must name its approver"),
        ("yes", "not approved"),
    ],
)
async def test_a_change_without_a_valid_approval_does_not_run(
    settings: Settings, write_tool: str, decision: object, reason: str
) -> None:
    async with open_agent(settings) as agent:
        with_model(agent, ScriptedChatModel(script=[restart("db"), AIMessage("ok")]))
        pending = await agent.ask("r", "restart db", user="alice", source="test")
        assert isinstance(pending, PendingApproval)
        done = await agent.resume("r", decision)  # type: ignore[arg-type]
    assert isinstance(done, Answer)
    assert RUNS == []
    assert done.results[0].status == "error" and reason in done.results[0].message


async def test_a_paused_thread_keeps_its_approval_when_someone_replies(
    settings: Settings, write_tool: str
) -> None:
    async with open_agent(settings) as agent:
        with_model(agent, ScriptedChatModel(script=[restart("db")]))
        first = await agent.ask("p", "restart db", user="alice", source="test")
        again = await agent.ask("p", "is it done?", user="carol", source="test")
        assert isinstance(first, PendingApproval) and again == first
        with pytest.raises(ValueError, match="not waiting"):
            await agent.resume("other-thread", {"approved": True, "by": "bob"})
    assert RUNS == []


async def test_turns_in_one_thread_do_not_swap_answers(settings: Settings) -> None:
    async with open_agent(settings) as agent:
        crash, disk = await asyncio.gather(
            agent.ask("same", "pods keep crash-looping", user="u", source="test"),
            agent.ask("same", "the disk is filling up on a host", user="u", source="test"),
        )
        history = await agent.messages("same")
    assert isinstance(crash, Answer) and isinstance(disk, Answer)
    assert crash.question == "pods keep crash-looping"
    assert crash.evidence[0].source == "kubernetes/PodCrashLooping.md"
    assert disk.evidence[0].source == "infra/DiskFillingUp.md"
    assert len([m for m in history if isinstance(m, HumanMessage)]) == 2


def test_agent_context_follows_settings(tmp_path: Path) -> None:
    plain = agent_context(Settings(data_dir=tmp_path))
    assert plain.model is None and plain.assist is False
    remote = agent_context(
        Settings(data_dir=tmp_path, llm={"url": "http://vllm:8000/v1", "model": "qwen"})  # type: ignore[arg-type]
    )
    assert isinstance(remote, AgentContext) and remote.model is not None and remote.assist


def test_failure_notes_never_carry_credentials() -> None:
    from bot.agent.llm import describe_failure, make_chat_model
    from bot.settings import LLMSettings

    model = make_chat_model(LLMSettings(url="https://bot:hunter2@vllm.internal:8000/v1"))
    request = httpx.Request("POST", "https://vllm.internal/v1/chat/completions")
    note = describe_failure(openai.APIConnectionError(request=request), model)
    assert "hunter2" not in note and "https://vllm.internal:8000/v1" in note


async def test_a_log_rca_answer_is_summarised_with_the_rca_prompt(settings: Settings) -> None:
    lines = "\n".join(
        [f"2026-11-23 10:00:{i:02d} INFO served GET /cart in 12 ms" for i in range(40)]
        + [f"2026-11-23 10:01:{i:02d} ERROR connection pool exhausted" for i in range(20)]
    )
    model = ScriptedChatModel(script=[AIMessage("The pool ran out of connections [E1].")])
    async with open_agent(settings) as agent:
        with_model(agent, model)
        answer = await agent.ask("r", lines, user="u", source="test", tool="log_rca")
    assert isinstance(answer, Answer) and answer.summary
    system = str(model.calls[-1][0].content)
    assert "log root-cause report" in system
    assert "connection pool exhausted" in system
