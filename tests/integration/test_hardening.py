"""Bad input gets a clear 4xx or answer and loses nothing; logs stay bounded; replays run
once; readiness tells the truth; /metrics is there."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.http.guard import signature_for
from bot.net import free_port
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from tests.integration.conftest import SECRET, running_bot
from tests.integration.test_durable import notification
from tests.integration.test_slack_http import crash_log

pytestmark = pytest.mark.integration


@pytest.fixture
def alerting_settings(bot_settings: Settings) -> Settings:
    return bot_settings.model_copy(
        update={"alerts": bot_settings.alerts.model_copy(update={"channel": "C0ALERTS"})}
    )


@pytest.fixture
def url(alerting_settings: Settings) -> Iterator[str]:
    with running_bot(alerting_settings) as events_url:
        yield events_url


def signed(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature_for(SECRET, ts.encode(), body),
    }


BAD_BODIES = [
    (b"\xff\xfe\xfd not utf-8", "application/x-www-form-urlencoded"),
    (b"{", "application/json"),
    (b"payload=null", "application/x-www-form-urlencoded"),
    (b"payload=%7Bnot+json", "application/x-www-form-urlencoded"),
    (b"", "application/json"),
]


@pytest.mark.parametrize(("body", "content_type"), BAD_BODIES)
def test_unsigned_and_malformed_bodies_get_a_4xx_on_a_connection_that_stays_open(
    url: str, body: bytes, content_type: str
) -> None:
    with httpx.Client(timeout=10) as client:
        unsigned = client.post(url, content=body, headers={"Content-Type": content_type})
        assert unsigned.status_code == 401
        odd_ts = {"Content-Type": content_type, "X-Slack-Request-Timestamp": "soon",
                  "X-Slack-Signature": "v0=abc"}  # fmt: skip
        assert client.post(url, content=body, headers=odd_ts).status_code == 401
        forged = client.post(url, content=body, headers=signed(body + b"x", content_type))
        assert forged.status_code == 401
        genuine = client.post(url, content=body, headers=signed(body, content_type))
        assert 400 <= genuine.status_code < 500 or genuine.status_code == 200
        assert (
            client.get(url.replace("/slack/events", "/livez")).status_code == 200
        )  # same connection


def test_rejections_are_logged_on_one_bounded_line_without_the_body(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    huge = b"secret-looking-body " * 300_000  # 6 MB
    response = httpx.post(url, content=huge, headers={"X-Slack-Request-Timestamp": "1",
                                                      "X-Slack-Signature": "v0=1"})  # fmt: skip
    assert response.status_code == 401
    forged_line = b"text=hello%0A2026-12-01 INFO bot: approved by admin"
    headers = signed(forged_line)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert httpx.post(url, content=forged_line, headers=headers).status_code == 401
    too_big = httpx.post(url, content=huge, headers=signed(huge))
    assert too_big.status_code == 413
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http.guard"]
    assert len(lines) == 3
    assert all(len(line) < 300 and "\n" not in line for line in lines)
    assert not any("secret-looking" in line or "approved by" in line for line in lines)


def test_an_exact_replay_of_a_signed_command_runs_once(url: str, standin: SlackStandIn) -> None:
    sender = SignedSender(url, SECRET)
    body = "command=%2Fops&text=ask+what+should+I+check+when+pods+crash-loop%3F" \
           "&user_id=U0ALICE&channel_id=C0OPS&trigger_id=T1&team_id=T0TEAM"  # fmt: skip
    headers = sender.signed_headers(body)
    for _ in range(3):
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
    time.sleep(1)
    assert (
        len([c for c in standin.calls_to("chat.postMessage") if "asked:" in c.params["text"]]) == 1
    )


def test_a_command_without_user_or_channel_is_told_so_in_the_ack(
    url: str, standin: SlackStandIn
) -> None:
    body = "command=%2Fops&text=ask+why&team_id=T0TEAM&trigger_id=T2"
    response = httpx.post(url, content=body, headers=signed(body.encode()))
    assert response.status_code == 200 and "could not be read" in response.text
    assert "user_id" in response.text
    time.sleep(0.5)
    assert standin.calls_to("chat.postMessage") == []


def test_an_event_with_odd_files_is_still_answered(url: str, standin: SlackStandIn) -> None:
    event = {
        "type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> my pod was OOMKilled",
        "ts": "1700000900.000100", "channel": "C0OPS", "files": ["not", 3, None],
    }  # fmt: skip
    assert SignedSender(url, SECRET).event(event).status_code == 200
    answer = standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
    assert "Something went wrong" not in json.dumps(answer.params)


def test_long_group_keys_and_mixed_time_zones_are_one_thread_each(
    url: str, standin: SlackStandIn
) -> None:
    webhook = url.replace("/slack/events", "/alertmanager")
    long_key = '{}:{alertname="PodCrashLooping"}' + "x" * 2000
    first = notification(long_key)
    first["alerts"].append({**first["alerts"][0], "startsAt": "2026-11-23T09:00:00",  # type: ignore[attr-defined]
                            "fingerprint": "f2"})  # fmt: skip
    for _ in range(2):
        assert httpx.post(webhook, json=first).status_code == 202
        time.sleep(1.5)
    standin.wait_for("chat.postMessage", lambda c: "Still firing" in c.params["text"], 60)
    headers = [c for c in standin.calls_to("chat.postMessage")
               if c.params["channel"] == "C0ALERTS" and not c.params.get("thread_ts")]  # fmt: skip
    assert len(headers) == 1


def test_a_failed_upload_never_replaces_the_answer(url: str, standin: SlackStandIn) -> None:
    standin.failures["files.getUploadURLExternal"] = "internal_error"
    SignedSender(url, SECRET).slash_command("rca " + crash_log().decode())
    note = standin.wait_for(
        "chat.postMessage", lambda c: "could not attach" in c.params["text"], 90
    )
    thread = standin.thread("C0OPS", note.params["thread_ts"])
    assert any("Top finding" in str(m.get("text")) for m in thread)
    assert not any("Something went wrong" in str(m.get("text")) for m in thread)


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"Prometheus Server is Ready.\n")

    def log_message(self, *args: object) -> None:
        pass


def test_readyz_names_each_dependency_until_it_answers(
    alerting_settings: Settings, tmp_path: Path
) -> None:
    ports = {"prometheus": free_port(), "alertmanager": free_port(), "llm": free_port()}
    settings = alerting_settings.model_copy(update={  # nothing listens at these ports yet
        name: getattr(alerting_settings, name).model_copy(
            update={"url": f"http://127.0.0.1:{port}" + ("/v1" if name == "llm" else "")})
        for name, port in ports.items()
    })  # fmt: skip
    with running_bot(settings) as events_url:
        base = events_url.removesuffix("/slack/events")
        assert httpx.get(f"{base}/livez").status_code == 200
        servers = []
        for name, port in ports.items():  # each is named until it answers, then the next
            down = httpx.get(f"{base}/readyz")
            assert down.status_code == 503
            checks = down.json()["checks"]
            assert checks[name].startswith("unreachable"), checks
            assert checks["database"] == "ok" and checks["agent"] == "ok"
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Ready)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            time.sleep(2.1)  # readiness is cached for 2 s
        try:
            up = httpx.get(f"{base}/readyz")
            assert up.status_code == 200 and set(up.json()["checks"].values()) == {"ok"}
            exported = httpx.get(f"{base}/metrics").text
            for name in ports:
                assert f'opsbot_dependency_up{{dependency="{name}"}} 1.0' in exported
            assert "opsbot_ready 1.0" in exported
        finally:
            for server in servers:
                server.shutdown()


def test_readyz_says_when_the_database_does_not_answer() -> None:
    from types import SimpleNamespace

    from bot.http.health import Readiness

    def ping() -> None:
        raise ConnectionRefusedError("connection refused")

    settings = SimpleNamespace(**{n: SimpleNamespace(url=None) for n in ("prometheus",
                                  "alertmanager", "llm")})  # fmt: skip
    services = SimpleNamespace(settings=settings, store=SimpleNamespace(ping=ping),
                               startup_error=None, ready=False, agent=None)  # fmt: skip
    report = asyncio.run(Readiness(services).report())  # type: ignore[arg-type]
    assert report["database"] == "database does not answer (ConnectionRefusedError)"
    assert report["agent"].startswith("starting")


def test_readyz_is_503_while_the_agent_starts_and_the_webhook_says_starting(
    bot_settings: Settings, tmp_path: Path
) -> None:
    missing = bot_settings.model_copy(
        update={"index": bot_settings.index.model_copy(update={"dir": tmp_path / "no-index"})}
    )
    import uvicorn

    from bot.server import build_web_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_web_app(missing), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                report = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if "index" in report.json()["checks"]["agent"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert report.status_code == 503
        assert "index" in report.json()["checks"]["agent"]
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_metrics_count_requests_acks_and_the_queue(url: str, standin: SlackStandIn) -> None:
    SignedSender(url, SECRET).slash_command("ask what should I check when pods crash-loop?")
    standin.wait_for("chat.update", lambda c: "Best match" in c.params["text"], 60)
    text = httpx.get(url.replace("/slack/events", "/metrics")).text
    assert 'opsbot_slack_requests_total{kind="command",outcome="accepted"}' in text
    assert "opsbot_ack_latency_seconds_bucket" in text
    assert 'opsbot_answers_total{outcome="answered"}' in text
    assert 'opsbot_queue_depth{queue="answers",state="queued"}' in text
    assert 'opsbot_tool_calls_total{status="ok",tool="runbook_search"}' in text
