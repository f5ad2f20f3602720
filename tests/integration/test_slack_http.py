"""The real Bolt app over HTTP against the Slack Web API stand-in, with signed requests."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.settings import LLMSettings, Settings
from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn
from tests.integration.conftest import SECRET, TOKEN, free_port, running_bot

pytestmark = pytest.mark.integration


def final_update(standin: SlackStandIn, timeout: float = 60) -> RecordedCall:
    return standin.wait_for(
        "chat.update", lambda c: "Best match" in c.params.get("text", ""), timeout=timeout
    )


def test_ask_is_acked_fast_and_answered_in_a_thread(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    started = time.monotonic()
    response = bot.slash_command("ask what should I check when pods crash-loop?")
    acked = time.monotonic() - started
    assert response.status_code == 200
    assert acked < 3.0
    starter = standin.wait_for("chat.postMessage", lambda c: "asked:" in c.params["text"])
    assert starter.params["channel"] == "C0OPS" and "thread_ts" not in starter.params
    status = standin.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") is not None)
    answer = final_update(standin)
    thread_ts = status.params["thread_ts"]
    thread = standin.thread("C0OPS", thread_ts)
    assert len(thread) == 2  # the question, then the status message turned answer
    assert "kubernetes/PodCrashLooping.md" in json.dumps(answer.params["blocks"])
    statuses = [c.params["text"] for c in standin.calls_to("chat.update")]
    assert statuses[0] == "searching runbooks…"


def test_help_unknown_and_empty_are_answered_in_the_ack(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    help_ = bot.slash_command("help")
    assert help_.status_code == 200 and "/ops ask" in help_.text
    unknown = bot.slash_command("frobnicate now")
    assert "/ops frobnicate" in unknown.text
    empty = bot.slash_command("ask   ")
    assert "Ask me something" in empty.text
    time.sleep(0.5)
    assert standin.calls_to("chat.postMessage") == []


def test_unsigned_and_stale_requests_are_rejected(bot: SignedSender, standin: SlackStandIn) -> None:
    assert bot.slash_command("ask pods", sign=False).status_code == 401
    stale = bot.slash_command("ask pods", timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    time.sleep(0.5)
    assert standin.calls_to("chat.postMessage") == []


def mention(text: str, ts: str, thread_ts: str | None = None) -> dict[str, object]:
    event = {
        "type": "app_mention",
        "user": "U0ALICE",
        "text": f"<@U0BOT> {text}",
        "ts": ts,
        "channel": "C0OPS",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def reply(text: str, ts: str, thread_ts: str) -> dict[str, object]:
    return {
        "type": "message",
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "channel": "C0OPS",
        "channel_type": "channel",
    }


def test_mention_starts_a_thread_and_replies_continue_it_across_a_restart(
    bot_settings: Settings, standin: SlackStandIn
) -> None:
    root = "1700000100.000100"
    with running_bot(bot_settings) as url:
        sender = SignedSender(url, SECRET)
        assert sender.event(mention("my pod was OOMKilled", root)).status_code == 200
        first = final_update(standin)
        assert "kubernetes/PodOOMKilled.md" in json.dumps(first.params["blocks"])
        standin.clear()
        assert sender.event(reply("and what then?", "1700000100.000200", root)).status_code == 200
        second = final_update(standin)
        # the follow-up carried the thread's topic
        assert "kubernetes/PodOOMKilled.md" in json.dumps(second.params["blocks"])
        status = standin.calls_to("chat.postMessage")[0]
        assert status.params["thread_ts"] == root
    standin.clear()
    with running_bot(bot_settings) as url:  # a restarted bot
        sender = SignedSender(url, SECRET)
        sender.event(reply("and what then?", "1700000100.000300", root))
        third = final_update(standin)
        assert "kubernetes/PodOOMKilled.md" in json.dumps(third.params["blocks"])


def test_only_people_in_the_bots_threads_are_answered(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    root = "1700000200.000100"
    bot.event(reply("random chatter", "1700000200.000200", "1700000199.000100"))  # unknown thread
    bot.event(mention("pods keep crash-looping", root))
    final_update(standin)
    standin.clear()
    # In a thread the bot knows: another bot's message, an edit, and the `message` twin
    # that Slack sends beside every app_mention are all left alone.
    bot.event({**reply("I am a bot", "1700000200.000300", root), "bot_id": "B0OTHER"})
    bot.event({**reply("edited", "1700000200.000400", root), "subtype": "message_changed"})
    bot.event(reply("<@U0BOT> and memory?", "1700000200.000500", root))
    time.sleep(1.5)
    assert standin.calls_to("chat.postMessage") == []
    bot.event(reply("and what about memory?", "1700000200.000600", root))
    assert final_update(standin).params["channel"] == "C0OPS"


def test_a_retried_event_is_not_answered_twice(bot: SignedSender, standin: SlackStandIn) -> None:
    event = mention("disk is filling up", "1700000300.000100")
    assert bot.event(event, event_id="Ev0RETRY").status_code == 200
    assert bot.event(event, event_id="Ev0RETRY", retry_num=1).status_code == 200
    final_update(standin)
    time.sleep(1.0)
    statuses = [c for c in standin.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(statuses) == 1


def test_secrets_never_reach_logs_or_messages(
    bot: SignedSender, standin: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot.slash_command("ask what should I check when pods crash-loop?")
    final_update(standin)
    posted = json.dumps([c.params for c in standin.calls])
    for secret in (TOKEN, SECRET):
        assert secret not in caplog.text
        assert secret not in posted
    assert caplog.records, "debug logging was captured"


def test_a_model_that_is_down_is_noted_and_the_evidence_answer_arrives(
    bot_settings: Settings, standin: SlackStandIn
) -> None:
    port = free_port()  # nothing listens there
    down = bot_settings.model_copy(
        update={
            "llm": LLMSettings(
                url=f"http://127.0.0.1:{port}/v1", model="qwen", timeout=2, max_retries=0
            )
        }
    )
    with running_bot(down) as url:
        SignedSender(url, SECRET).slash_command("ask what should I check when pods crash-loop?")
        answer = final_update(standin)
    blocks = json.dumps(answer.params["blocks"])
    assert "kubernetes/PodCrashLooping.md" in blocks
    assert "is unavailable" in blocks


def crash_log() -> bytes:
    normal = [
        f"2026-11-23 10:{i // 60:02d}:{i % 60:02d},120 INFO checkout.api: "
        f"served order {i} in {i % 9} ms"
        for i in range(300)
    ]
    broken = [
        f"2026-11-23 10:07:{i:02d},500 ERROR checkout.db: connection pool exhausted after 30 s"
        for i in range(40)
    ]
    return ("\n".join(normal[:200] + broken + normal[200:]) + "\n").encode()


def test_a_log_file_attached_in_a_thread_gets_an_rca(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    root = "1700000400.000100"
    file = standin.add_file("checkout.log", crash_log())
    event = {**mention("why is checkout failing? logs attached", root), "files": [file]}
    bot.event(event)
    answer = standin.wait_for(
        "chat.update", lambda c: "Top finding" in c.params.get("text", ""), timeout=90
    )
    blocks = json.dumps(answer.params["blocks"])
    assert "connection pool exhausted" in blocks
    downloads = standin.calls_to("files.download")
    assert len(downloads) == 1 and downloads[0].headers["authorization"] == f"Bearer {TOKEN}"
    statuses = [c.params["text"] for c in standin.calls_to("chat.update")]
    assert "analysing logs…" in statuses
    complete = standin.wait_for("files.completeUploadExternal", timeout=30)
    assert complete.params["thread_ts"] == root
    uploaded = standin.calls_to("files.upload")[0].content or b""
    assert uploaded.startswith(b"# Log RCA") and b"connection pool exhausted" in uploaded


def test_rca_of_pasted_lines_and_bad_attachments(bot: SignedSender, standin: SlackStandIn) -> None:
    assert "Paste log lines" in bot.slash_command("rca").text
    bot.slash_command("rca " + crash_log().decode())
    answer = standin.wait_for(
        "chat.update", lambda c: "Top finding" in c.params.get("text", ""), timeout=90
    )
    assert "connection pool exhausted" in json.dumps(answer.params["blocks"])
    standin.clear()
    binary = standin.add_file("core.dump", b"\x7fELF\x00\x00" * 500)
    bot.event({**mention("what happened?", "1700000500.000100"), "files": [binary]})
    failed = standin.wait_for(
        "chat.update", lambda c: "looks binary" in json.dumps(c.params.get("blocks")), timeout=60
    )
    assert failed.params["channel"] == "C0OPS"
