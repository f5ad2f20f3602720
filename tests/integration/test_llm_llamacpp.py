"""The LLM client path against a real llama.cpp server serving the packaged Gemma GGUF.

The model is a base model: it proves the wiring (tool calls parsed, timeouts and a dying
server handled), not the quality of answers.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import HumanMessage

from bot.agent.answer import Answer
from bot.agent.llm import SERVER_ERRORS, describe_failure, make_chat_model
from bot.agent.planner import plan_with_model
from bot.agent.service import open_agent
from bot.llm_server import LocalModelError, llama_server_command
from bot.settings import EMBEDDED_MODEL, LLMSettings, Settings
from tests.integration.conftest import free_port
from tools.base import ToolContext
from tools.registry import run_tool

pytestmark = pytest.mark.integration


def start_server(models_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    try:
        command = llama_server_command(
            None, host="127.0.0.1", port=port, n_ctx=2048, models_dir=models_dir
        )
    except LocalModelError as exc:
        pytest.skip(f"LOUD SKIP: local LLM not installed ({exc}); `make test` installs it")
    log = models_dir / f"llama-{port}.log"  # a file: llama.cpp logs more than a pipe holds
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama.cpp server did not start in 120 s")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def llama(models_dir: Path) -> Iterator[str]:
    proc, url = start_server(models_dir)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def llm(url: str, **overrides: object) -> LLMSettings:
    return LLMSettings(url=url, model=EMBEDDED_MODEL, **overrides)  # type: ignore[arg-type]


def test_server_lists_the_embedded_model(llama: str) -> None:
    models = httpx.get(f"{llama}/models").json()["data"]
    assert [m["id"] for m in models] == [EMBEDDED_MODEL]


async def test_a_forced_tool_call_is_parsed_and_validated(llama: str, sample_index: Path) -> None:
    model = make_chat_model(llm(llama, timeout=120))
    assert model is not None
    reply = await plan_with_model(
        model.bind(max_tokens=96),  # type: ignore[arg-type]
        [HumanMessage("What should I check when pods crash-loop?")],
        tool_choice="runbook_search",
    )
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call["name"] == "runbook_search" and isinstance(call["args"], dict)
    # Whatever a base model put in the arguments, the tool node validates them and answers.
    result = run_tool(call["name"], call["args"], ToolContext(sample_index, "all-MiniLM-L6-v2"))
    assert result.status in ("ok", "no_data", "error")
    if result.status == "error":
        assert "bad arguments" in result.message


async def test_a_slow_model_times_out_and_the_evidence_answer_stands(
    llama: str, settings: Settings
) -> None:
    slow = settings.model_copy(update={"llm": llm(llama, timeout=0.05, max_retries=0, assist="on")})
    async with open_agent(slow) as agent:
        answer = await agent.ask("slow", "pods crash-loop after a deploy", user="u", source="test")
    assert isinstance(answer, Answer)
    assert answer.evidence[0].source == "kubernetes/PodCrashLooping.md"
    assert any("did not answer in time" in note for note in answer.notes), answer.notes


async def test_a_server_that_dies_mid_answer_is_reported(
    models_dir: Path, settings: Settings
) -> None:
    proc, url = start_server(models_dir)
    try:
        model = make_chat_model(llm(url, timeout=60, max_retries=0))
        assert model is not None
        # EOS (1) and end-of-turn (106) banned: the answer runs until the server dies.
        long = model.bind(max_tokens=2000, logit_bias={"1": -100, "106": -100})  # type: ignore[arg-type]
        received: list[str] = []
        with pytest.raises(SERVER_ERRORS) as err:
            async for chunk in long.astream([HumanMessage("Write a long story about servers.")]):
                received.append(str(chunk.content))
                if len(received) == 5:
                    proc.kill()  # mid-answer
        assert len(received) >= 5, "the answer ended before the server could die"
        assert "unavailable" in describe_failure(err.value, model)
        # The bot carries on: with the server gone, the agent answers from evidence.
        dead = settings.model_copy(update={"llm": llm(url, timeout=5, max_retries=0, assist="on")})
        async with open_agent(dead) as agent:
            answer = await agent.ask("dead", "disk filling up", user="u", source="test")
        assert isinstance(answer, Answer) and answer.evidence
        assert any("unavailable" in note for note in answer.notes)
    finally:
        proc.kill()
        proc.wait(timeout=10)
