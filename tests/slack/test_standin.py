"""The Slack Web API stand-in, driven by the real slack_sdk client, and the signed sender."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn, serve_forever
from tests.local_http import serving

TOKEN = "xoxb-test"
SECRET = "test-signing-secret"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe chart bytes \x00\x01\x02"


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=standin.base_url)


def test_base_url_and_auth_test(standin: SlackStandIn, client: WebClient) -> None:
    assert standin.base_url == f"http://127.0.0.1:{standin.port}/api/"
    assert standin.port > 0
    resp = client.auth_test()
    assert resp["ok"] is True
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == ("U0BOT", "B0BOT", "T0TEAM")
    assert resp["team"] == "opsbot-test" and resp["user"] == "opsbot"
    (call,) = standin.calls_to("auth.test")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.path == "/api/auth.test"


def test_post_update_and_replies_make_a_thread(standin: SlackStandIn, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0OPS", text="asked: why?")
    reply = client.chat_postMessage(channel="C0OPS", text="searching…", thread_ts=parent["ts"])
    assert parent["channel"] == "C0OPS" and parent["message"]["text"] == "asked: why?"
    # Slack-style ts: the time of posting in microseconds, unique and increasing
    assert re.fullmatch(r"\d{10}\.\d{6}", parent["ts"])
    assert abs(float(parent["ts"]) - time.time()) < 60
    assert float(reply["ts"]) > float(parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert reply["message"]["bot_id"] == "B0BOT" and reply["message"]["user"] == "U0BOT"

    updated = client.chat_update(channel="C0OPS", ts=reply["ts"], text="Best match: x")
    assert updated["ts"] == reply["ts"] and updated["text"] == "Best match: x"

    replies = client.conversations_replies(channel="C0OPS", ts=parent["ts"])
    assert replies["has_more"] is False
    assert [m["text"] for m in replies["messages"]] == ["asked: why?", "Best match: x"]
    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], reply["ts"]]
    assert standin.thread("C0OPS", parent["ts"]) == replies["messages"]
    assert standin.thread("C0OTHER", parent["ts"]) == []
    assert standin.calls_to("conversations.replies")[0].params["ts"] == parent["ts"]

    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts="1.000000", text="nope")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        client.conversations_replies(channel="C0OPS", ts="1.000000")
    assert err.value.response["error"] == "thread_not_found"


def test_human_messages_can_be_added_to_a_thread(standin: SlackStandIn, client: WebClient) -> None:
    root = standin.add_message("C0OPS", "<@U0BOT> pods crash", user="U0ALICE")
    client.chat_postMessage(channel="C0OPS", text="answer", thread_ts=root["ts"])
    standin.add_message("C0OPS", "and then?", thread_ts=root["ts"])
    thread = standin.thread("C0OPS", root["ts"])
    assert [(m["user"], m["text"]) for m in thread] == [
        ("U0ALICE", "<@U0BOT> pods crash"),
        ("U0BOT", "answer"),
        ("U0ALICE", "and then?"),
    ]
    assert thread[0]["reply_count"] == 2


def test_blocks_are_recorded_decoded(standin: SlackStandIn, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Best match*"}}]
    resp = client.chat_postMessage(channel="C0OPS", text="fallback", blocks=blocks)
    call = standin.wait_for("chat.postMessage")
    assert call.params["blocks"] == blocks
    assert call.params["channel"] == "C0OPS"
    assert standin.thread("C0OPS", resp["ts"])[0]["blocks"] == blocks
    # form-encoded (legacy style) blocks arrive as a JSON string and are decoded too
    client.api_call("chat.postMessage", params={"channel": "C0OPS", "blocks": json.dumps(blocks)})
    assert standin.calls_to("chat.postMessage")[1].params["blocks"] == blocks


def test_files_upload_v2_into_a_thread(standin: SlackStandIn, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C0OPS", text="asked: latency?")
    resp = client.files_upload_v2(
        channel="C0OPS",
        thread_ts=parent["ts"],
        content=PNG,
        filename="chart.png",
        initial_comment="p99 latency",
    )
    names = [c.method for c in standin.calls]
    assert names == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.upload",
        "files.completeUploadExternal",
    ]
    get_url = standin.calls_to("files.getUploadURLExternal")[0]
    assert get_url.params["filename"] == "chart.png"
    assert int(get_url.params["length"]) == len(PNG)
    upload = standin.calls_to("files.upload")[0]
    assert upload.content == PNG
    complete = standin.calls_to("files.completeUploadExternal")[0]
    assert complete.params["thread_ts"] == parent["ts"]
    assert complete.params["channel_id"] == "C0OPS"
    file_id = complete.params["files"][0]["id"]
    assert upload.path == f"/upload/{file_id}"
    assert resp["files"][0] == {
        "id": file_id,
        "title": "chart.png",
        "name": "chart.png",
        "size": len(PNG),
    }
    thread = standin.thread("C0OPS", parent["ts"])
    assert len(thread) == 2
    assert thread[1]["text"] == "p99 latency" and thread[1]["files"][0]["id"] == file_id


def test_upload_endpoint_accepts_multipart(standin: SlackStandIn, client: WebClient) -> None:
    url = client.files_getUploadURLExternal(filename="a.bin", length=len(PNG))["upload_url"]
    r = httpx.post(url, files={"file": ("a.bin", PNG, "application/octet-stream")})
    assert r.status_code == 200 and r.text == f"OK - {len(PNG)}"
    assert standin.calls_to("files.upload")[0].content == PNG


def test_unknown_methods_users_info_and_ephemeral(standin: SlackStandIn, client: WebClient) -> None:
    assert client.reactions_add(channel="C0OPS", timestamp="1.1", name="eyes")["ok"] is True
    assert standin.calls_to("reactions.add")[0].params["name"] == "eyes"
    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE" and user["is_bot"] is False
    eph = client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
    assert eph["message_ts"]


def test_response_url_records_posts(standin: SlackStandIn) -> None:
    url = standin.response_url()
    assert url.startswith(f"http://127.0.0.1:{standin.port}/") and url != standin.response_url()
    resp = WebhookClient(url).send(text="done", response_type="in_channel")
    assert resp.status_code == 200
    call = standin.wait_for("response_url", timeout=2)
    assert call.params["text"] == "done" and call.params["response_type"] == "in_channel"
    assert url.endswith(call.path)


def test_wait_for_blocks_until_a_matching_call(standin: SlackStandIn, client: WebClient) -> None:
    def later() -> None:
        time.sleep(0.3)
        client.chat_postMessage(channel="C0OPS", text="first")
        client.chat_postMessage(channel="C0OPS", text="second")

    threading.Thread(target=later).start()
    started = time.monotonic()
    call = standin.wait_for("chat.postMessage", lambda c: c.params["text"] == "second", 5)
    assert call.params["text"] == "second"
    assert 0.25 < time.monotonic() - started < 5
    assert isinstance(call, RecordedCall) and call.at >= started
    # already-recorded calls match immediately
    assert standin.wait_for("chat.postMessage", timeout=0).params["text"] == "first"


def test_wait_for_times_out_listing_seen_calls(standin: SlackStandIn, client: WebClient) -> None:
    client.chat_postMessage(channel="C0OPS", text="hello")
    with pytest.raises(TimeoutError) as err:
        standin.wait_for("chat.update", timeout=0.2)
    assert "chat.update" in str(err.value)
    assert "chat.postMessage(channel=C0OPS)" in str(err.value)
    standin.clear()
    assert standin.calls == []
    with pytest.raises(TimeoutError, match="calls seen: none"):
        standin.wait_for("chat.postMessage", timeout=0.1)


def test_invalid_token_is_rejected(standin: SlackStandIn) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=standin.base_url)
    with pytest.raises(SlackApiError) as err:
        bad.chat_postMessage(channel="C0OPS", text="hi")
    assert err.value.response["error"] == "invalid_auth"
    assert standin.thread("C0OPS", "1700000000.000100") == []
    assert len(standin.calls_to("chat.postMessage")) == 1  # still recorded


def test_serve_forever_echoes_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []

    def fake_sleep(_: float) -> None:
        port = int(lines[0].split(":")[-1].split("/")[0])
        WebClient(base_url=f"http://127.0.0.1:{port}/api/").chat_postMessage(
            channel="C0OPS", thread_ts="1700000000.000100", text="x" * 100 + "\nmore"
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", fake_sleep)
    serve_forever(port=0, echo=lines.append)
    call_line = lines[1].split(" ", 1)
    assert len(call_line[0]) == 8 and call_line[0].count(":") == 2
    assert call_line[1] == "chat.postMessage channel=C0OPS thread_ts=1700000000.000100 text=" + (
        "x" * 80
    )


# -- SignedSender --------------------------------------------------------------------------


class _Verifying(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        headers = dict(self.headers.items())
        valid = SignatureVerifier(SECRET).is_valid_request(body, headers)
        self.received.append(
            {"body": body, "headers": {k.lower(): v for k, v in headers.items()}, "valid": valid}
        )
        self.send_response(200 if valid else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bot() -> Iterator[tuple[SignedSender, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Verifying,), {"received": received})
    with serving(handler) as url:
        yield SignedSender(f"{url}/slack/events", SECRET), received


def test_slash_command_is_signed_and_form_encoded(bot: tuple[SignedSender, list]) -> None:
    sender, received = bot
    assert sender.slash_command("ask pods?", response_url="http://x/r").status_code == 200
    got = received[0]
    assert got["valid"] is True
    assert got["headers"]["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(got["body"]).items()}
    assert form["command"] == "/ops" and form["text"] == "ask pods?"
    assert (form["user_id"], form["channel_id"], form["team_id"]) == ("U0ALICE", "C0OPS", "T0TEAM")
    assert form["response_url"] == "http://x/r" and form["trigger_id"].startswith("T")
    sender.slash_command("ask again")
    again = {k: v[0] for k, v in parse_qs(received[1]["body"]).items()}
    assert again["trigger_id"] != form["trigger_id"]  # unique per command, as Slack's are


def test_unsigned_and_stale_requests_fail_verification(bot: tuple[SignedSender, list]) -> None:
    sender, received = bot
    assert sender.slash_command("ask", sign=False).status_code == 401
    assert "x-slack-signature" not in received[0]["headers"]
    ten_minutes_ago = int(time.time()) - 600
    stale = sender.slash_command("ask", timestamp=ten_minutes_ago)
    assert stale.status_code == 401 and received[1]["valid"] is False
    assert received[1]["headers"]["x-slack-request-timestamp"] == str(ten_minutes_ago)


def test_signed_headers_match_the_verifier() -> None:
    sender = SignedSender("http://unused", SECRET)
    headers = sender.signed_headers("a=b", timestamp=1_700_000_000, content_type="text/plain")
    expected = SignatureVerifier(SECRET).generate_signature(timestamp="1700000000", body="a=b")
    assert headers == {
        "Content-Type": "text/plain",
        "X-Slack-Request-Timestamp": "1700000000",
        "X-Slack-Signature": expected,
    }


def test_events_carry_an_envelope_and_retry_headers(bot: tuple[SignedSender, list]) -> None:
    sender, received = bot
    event = {"type": "app_mention", "text": "<@U0BOT> hi", "ts": "1.2", "channel": "C0OPS"}
    assert sender.event(event, event_id="Ev0ONE").status_code == 200
    assert sender.event(event, event_id="Ev0ONE", retry_num=2).status_code == 200
    first, retry = received
    assert first["valid"] and retry["valid"]
    assert "x-slack-retry-num" not in first["headers"]
    assert retry["headers"]["x-slack-retry-num"] == "2"
    assert retry["headers"]["x-slack-retry-reason"] == "http_timeout"
    envelope = json.loads(first["body"])
    assert first["headers"]["content-type"] == "application/json"
    assert envelope["type"] == "event_callback" and envelope["event"] == event
    assert envelope["event_id"] == "Ev0ONE" and envelope["team_id"] == "T0TEAM"
    assert envelope["authorizations"][0]["user_id"] == "U0BOT"
    sender.event(event)
    assert json.loads(received[2]["body"])["event_id"] != "Ev0ONE"


def test_interaction_posts_a_payload_form(bot: tuple[SignedSender, list]) -> None:
    sender, received = bot
    payload = {"type": "block_actions", "actions": [{"action_id": "helpful", "value": "yes"}]}
    assert sender.interaction(payload).status_code == 200
    assert received[0]["valid"] is True
    assert json.loads(parse_qs(received[0]["body"])["payload"][0]) == payload
    assert sender.interaction(payload, sign=False).status_code == 401


def test_messages_keep_their_metadata_and_history_lists_top_level_ones(
    standin: SlackStandIn, client: WebClient
) -> None:
    meta = {"event_type": "opsbot_post", "event_payload": {"post": "7:starter_ts"}}
    parent = client.chat_postMessage(channel="C0OPS", text="asked", metadata=meta)
    client.chat_postMessage(channel="C0OPS", text="in thread", thread_ts=parent["ts"])
    history = client.conversations_history(channel="C0OPS", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["asked"]
    assert history["messages"][0]["metadata"] == meta
    later = client.conversations_history(channel="C0OPS", oldest=str(float(parent["ts"]) + 1))
    assert later["messages"] == []


def test_methods_can_be_made_slow_or_failing(standin: SlackStandIn, client: WebClient) -> None:
    standin.failures["chat.postMessage"] = "ratelimited"
    try:
        client.chat_postMessage(channel="C0OPS", text="x")
    except Exception as exc:  # slack_sdk raises SlackApiError for ok=false
        assert "ratelimited" in str(exc)
    else:
        raise AssertionError("the failure was not returned")
    standin.failures.clear()
    standin.delays["chat.postMessage"] = 0.3
    started = time.monotonic()
    client.chat_postMessage(channel="C0OPS", text="x")
    assert time.monotonic() - started >= 0.3
