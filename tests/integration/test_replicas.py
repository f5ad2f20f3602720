"""Two `opsbot serve` replicas sharing a real PostgreSQL: conversations move between them,
an alert group is triaged once, and a job of a replica that dies is finished by the other."""

from __future__ import annotations

import json
import threading
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
from tests.integration.test_durable import ALERTS, bot_env, notification

pytestmark = pytest.mark.integration


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def replicas(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn, pg_database: str
) -> Iterator[tuple[BotProcess, BotProcess]]:
    def replica(name: str) -> BotProcess:
        env = bot_env(tmp_path / name, sample_index, standin, OPSBOT_DATABASE_URL=pg_database)
        return BotProcess(env, tmp_path / f"{name}.log")

    one, two = replica("one"), replica("two")
    starting = threading.Thread(target=one.start)  # both at once: migrations take turns
    starting.start()
    two.start()
    starting.join()
    try:
        yield one, two
    finally:
        one.kill()
        two.kill()


def mention(text: str, ts: str, thread_ts: str | None = None) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "app_mention", "user": "U0ALICE", "text": f"<@U0BOT> {text}", "ts": ts,
        "channel": "C0OPS",
    }  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def test_a_thread_started_on_one_replica_continues_on_the_other(
    replicas: tuple[BotProcess, BotProcess], standin: SlackStandIn
) -> None:
    one, two = replicas
    thread = "1700000100.000100"
    SignedSender(one.events_url, SECRET).event(mention("my pod was OOMKilled", thread))
    wait_until(lambda: len(updates_in(standin, thread)) == 1)
    assert "kubernetes/PodOOMKilled.md" in json.dumps(updates_in(standin, thread)[0])
    reply = {
        "type": "message", "user": "U0ALICE", "text": "and what then?",
        "ts": "1700000200.000100", "thread_ts": thread, "channel": "C0OPS",
    }  # fmt: skip
    one.kill()  # so the other replica surely answers
    assert SignedSender(two.events_url, SECRET).event(reply).status_code == 200
    wait_until(lambda: len(updates_in(standin, thread)) == 2)
    second = updates_in(standin, thread)[-1]
    # the follow-up carried the thread's topic, read from the shared checkpoint
    assert "kubernetes/PodOOMKilled.md" in json.dumps(second)


def updates_in(standin: SlackStandIn, thread: str) -> list[dict[str, object]]:
    """The bot's answers in a thread, as Slack shows them now."""
    return [m for m in standin.thread("C0OPS", thread) if "Best match" in str(m.get("text"))]


def test_an_alert_group_hitting_both_replicas_is_triaged_once(
    replicas: tuple[BotProcess, BotProcess], standin: SlackStandIn, pg_database: str
) -> None:
    one, two = replicas
    body = notification("group-both")
    results: list[int] = []
    senders = [
        threading.Thread(
            target=lambda url=url: results.append(httpx.post(url, json=body).status_code)
        )
        for url in (f"{one.base}/alertmanager", f"{two.base}/alertmanager") * 2
    ]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    assert results == [202] * 4
    queue = JobQueue(Store(pg_database).engine)
    wait_until(lambda: [j.state for j in queue.jobs()] == [DONE] * 4)
    headers = [
        c for c in standin.calls_to("chat.postMessage")
        if c.params["channel"] == ALERTS and not c.params.get("thread_ts")
    ]  # fmt: skip
    assert len(headers) == 1
    triages = [c for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    notes = [c for c in triages if "Still firing" in c.params["text"]]
    assert len(triages) - len(notes) == 1 and len(notes) == 3
    owners = {j.progress.get("plan") for j in queue.jobs()}
    assert owners == {"open", "repeat"}


def test_a_job_of_a_replica_that_dies_is_finished_by_the_other(
    replicas: tuple[BotProcess, BotProcess], standin: SlackStandIn, pg_database: str
) -> None:
    one, two = replicas
    two.kill()  # only one takes the job
    standin.delays["chat.update"] = 30.0  # one is stuck in the job while two starts
    SignedSender(one.events_url, SECRET).slash_command(
        "ask what should I check when pods crash-loop?"
    )
    standin.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") is not None, 30)
    two.start()
    one.kill()
    standin.delays.clear()
    queue = JobQueue(Store(pg_database).engine)
    wait_until(lambda: [j.state for j in queue.jobs()] == [DONE])
    job = queue.jobs()[0]
    assert job.attempts == 2
    answered = {
        c.params["ts"] for c in standin.calls_to("chat.update") if "Best match" in c.params["text"]
    }
    assert len(answered) == 1
    assert sum(1 for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")) == 1


def test_approvals_racing_on_both_replicas_execute_one_deploy(
    tmp_path: Path, sample_index: Path, standin: SlackStandIn, pg_database: str
) -> None:
    from bot.deploys.requests import FAILED, Requests
    from tools.deploy.registry import Registry

    store = Store(pg_database)
    weights = tmp_path / "not-a-model.gguf"  # passes the local target's preflight, never starts
    weights.write_bytes(b"not GGUF")
    Registry(store.engine).register("gemma", "v1", str(weights), params={}, by="U0ALICE")
    approvers = '{"staging":["U0BOB","U0CAROL"]}'

    def replica(name: str) -> BotProcess:
        env = bot_env(tmp_path / name, sample_index, standin, OPSBOT_DATABASE_URL=pg_database,
                      OPSBOT_DEPLOY_APPROVERS=approvers)  # fmt: skip
        return BotProcess(env, tmp_path / f"{name}.log")

    one, two = replica("one"), replica("two")
    starting = threading.Thread(target=one.start)
    starting.start()
    two.start()
    starting.join()
    try:
        SignedSender(one.events_url, SECRET).slash_command("deploy gemma v1", user_id="U0ALICE")
        requests = Requests(store.engine)
        wait_until(
            lambda: bool(requests.history("gemma")) and bool(requests.history("gemma")[0].card_ts)
        )
        request = requests.history("gemma")[0]
        value = f"{request.id}:{request.plan_hash[:16]}"

        def click(i: int) -> None:
            bot = (one, two)[i % 2]
            payload = {
                "type": "block_actions", "user": {"id": ("U0BOB", "U0CAROL")[i % 2]},
                "channel": {"id": request.channel},
                "container": {"thread_ts": request.thread_ts},
                "actions": [{"action_id": "deploy_approve", "value": value,
                             "action_ts": f"{time.time():.6f}{i}"[:17]}],
            }  # fmt: skip
            SignedSender(bot.events_url, SECRET).interaction(payload)

        clicks = [threading.Thread(target=click, args=(i,)) for i in range(20)]
        for c in clicks:
            c.start()
        for c in clicks:
            c.join()
        # the file is no model: the one execution fails at start
        wait_until(lambda: requests.history("gemma")[0].state == FAILED)
        final = requests.history("gemma")[0]
        assert final.executions == 1 and "Failed to load model" in final.note
    finally:
        one.kill()
        two.kill()


def test_a_due_eval_schedule_fires_once_on_two_replicas(
    replicas: tuple[BotProcess, BotProcess], standin: SlackStandIn, pg_database: str
) -> None:
    """Both replicas' schedule loops see the schedule due on the shared database: one eval
    job is recorded for its due time, one report reaches the channel, and the schedule moves
    to its next time once."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update
    from sqlmodel import Session

    from evals.schedule import EvalSchedule, Schedules

    engine = Store(pg_database).engine
    schedule = Schedules(engine).add("tools", "0 8 * * *", "C0OPS", by="U0ALICE")
    with Session(engine) as session:
        session.execute(update(EvalSchedule).where(EvalSchedule.id == schedule.id)  # type: ignore[arg-type]
                        .values(next_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        session.commit()

    def reports() -> list[object]:
        return [c for c in standin.calls_to("chat.postMessage")
                if c.params.get("text", "").startswith("eval tools:")]  # fmt: skip

    wait_until(lambda: len(reports()) == 1, 120)
    time.sleep(6)  # both loops (every 5 s) have looked again by now
    assert len(reports()) == 1
    runs = [j for j in JobQueue(engine).jobs() if j.kind == "eval_run"]
    assert len(runs) == 1 and runs[0].state == DONE
    (after,) = Schedules(engine).all()
    assert after.next_at > datetime.now(UTC) and after.last_run_id is not None
