"""Nothing accepted is lost: `opsbot serve` killed (-9) or stopped (SIGTERM) in the middle
of work, then started again, finishes every job it acknowledged — once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from bot.work.queue import DONE, JobQueue
from tests.integration.conftest import SECRET, TOKEN
from tests.integration.processes import BotProcess, wait_until

pytestmark = pytest.mark.integration
QUESTION = "ask what should I check when pods crash-loop?"
ALERTS = "C0ALERTS"


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


def bot_env(tmp_path: Path, index: Path, standin: SlackStandIn, **extra: str) -> dict[str, str]:
    return {
        "OPSBOT_DATA_DIR": str(tmp_path / "data"),
        "OPSBOT_INDEX_DIR": str(index),
        "OPSBOT_SLACK_BOT_TOKEN": TOKEN,
        "OPSBOT_SLACK_SIGNING_SECRET": SECRET,
        "OPSBOT_SLACK_API_URL": standin.base_url,
        "OPSBOT_ALERTS_CHANNEL": ALERTS,
        "OPSBOT_WORKERS_LEASE": "1",
        "OPSBOT_WORKERS_POLL": "0.1",
        "OPSBOT_LOG_LEVEL": "INFO",
        **extra,
    }


def answers(standin: SlackStandIn) -> list[str]:
    """The ts of every message that became an answer."""
    return sorted(
        {
            c.params["ts"]
            for c in standin.calls_to("chat.update")
            if "Best match" in c.params["text"]
        }
    )


def starters(standin: SlackStandIn, channel: str = "C0OPS") -> list[dict[str, object]]:
    return [
        c.params
        for c in standin.calls_to("chat.postMessage")
        if c.params["channel"] == channel and not c.params.get("thread_ts")
    ]


def data_store(data_dir: Path) -> Store:
    return Store(f"sqlite:///{data_dir / 'opsbot.sqlite'}")


def jobs_done(data_dir: Path) -> list[str]:
    return [j.state for j in JobQueue(data_store(data_dir).engine).jobs()]


def states(data_dir: Path, state: str) -> list[int]:
    """Ids of the jobs in ``state`` now."""
    return [j.id for j in JobQueue(data_store(data_dir).engine).jobs(state=state) if j.id]


def test_a_command_killed_right_after_its_ack_is_answered_once_after_restart(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    bot = BotProcess(bot_env(tmp_path, sample_index, standin), tmp_path / "bot.log")
    with bot.start():
        standin.delays["chat.postMessage"] = 0.5  # the worker is inside its first post
        assert SignedSender(bot.events_url, SECRET).slash_command(QUESTION).status_code == 200
        time.sleep(0.05)
        bot.kill()
        standin.delays.clear()
        bot.start()
        standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
        time.sleep(1.5)  # a second answer, were there one, would come now
    assert len(starters(standin)) == 1
    assert len(answers(standin)) == 1
    in_thread = [
        c.params for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")
    ]
    assert len(in_thread) == 1
    thread = standin.thread("C0OPS", str(in_thread[0]["thread_ts"]))
    assert len(thread) == 2  # the question, then one status message turned answer
    assert jobs_done(tmp_path / "data") == [DONE]


def test_an_answer_killed_in_the_middle_is_finished_once_after_restart(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    bot = BotProcess(bot_env(tmp_path, sample_index, standin), tmp_path / "bot.log")
    with bot.start():
        standin.delays["chat.update"] = 1.0  # status and answer updates are slow
        SignedSender(bot.events_url, SECRET).slash_command(QUESTION)
        standin.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") is not None, 30)
        time.sleep(0.3)
        bot.kill()
        standin.delays.clear()
        bot.start()
        standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
        time.sleep(1.5)
    assert len(starters(standin)) == 1 and len(answers(standin)) == 1
    assert sum(1 for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")) == 1


def test_an_alert_killed_after_its_202_is_triaged_once_after_restart(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    bot = BotProcess(bot_env(tmp_path, sample_index, standin), tmp_path / "bot.log")
    with bot.start():
        standin.delays["chat.postMessage"] = 0.5
        response = httpx.post(f"{bot.base}/alertmanager", json=notification("g1"))
        assert response.status_code == 202
        time.sleep(0.05)
        bot.kill()
        standin.delays.clear()
        bot.start()
        wait_until(lambda: jobs_done(tmp_path / "data") == [DONE])
        time.sleep(1.5)
    assert len(starters(standin, ALERTS)) == 1  # one thread for the group
    in_thread = [c for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(in_thread) == 1  # one status message, turned triage report


def test_sigterm_answers_what_is_in_flight_and_keeps_the_rest(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn
) -> None:
    env = bot_env(tmp_path, sample_index, standin, OPSBOT_MAX_CONCURRENT_ANSWERS="2")
    bot = BotProcess(env, tmp_path / "bot.log")
    with bot.start():
        standin.delays["chat.update"] = 0.3
        sender = SignedSender(bot.events_url, SECRET)
        for i in range(10):
            assert sender.slash_command(f"{QUESTION} ({i})").status_code == 200
        standin.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") is not None, 30)
        running = states(tmp_path / "data", "running")
        assert bot.terminate() in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down
        in_flight = len(answers(standin))
        after = {j.id: j.state for j in JobQueue(data_store(tmp_path / "data").engine).jobs()}
        standin.delays.clear()
        bot.start()
        deadline = time.monotonic() + 90
        while len(answers(standin)) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
    assert running and in_flight >= len(running)
    assert {after[i] for i in running} == {DONE}  # each job running at SIGTERM was finished
    assert len(answers(standin)) == 10 and len(starters(standin)) == 10
    assert json.dumps(jobs_done(tmp_path / "data")).count(DONE) == 10


def notification(group_key: str, status: str = "firing") -> dict[str, object]:
    labels = {"alertname": "PodCrashLooping", "namespace": "shop", "severity": "warning"}
    return {
        "version": "4",
        "groupKey": group_key,
        "status": status,
        "receiver": "opsbot",
        "groupLabels": {"alertname": "PodCrashLooping"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "a pod is crash-looping"},
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "a pod is crash-looping"},
                "startsAt": "2026-11-23T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }
