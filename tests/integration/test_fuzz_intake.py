"""Property-based: whatever arrives at /slack/events and /alertmanager, signed or not, the
bot answers with no 5xx, stays up, and finishes every job it accepted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from bot.work.queue import DONE, JobQueue
from tests.integration.conftest import SECRET, TOKEN, running_bot

pytestmark = pytest.mark.integration
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "multipart/form-data",
    ]
)
TEXT = st.text(max_size=300)
#: What an HTTP header value may hold (a client refuses to send control characters).
HEADER_CHARS = st.characters(min_codepoint=32, max_codepoint=126)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_bot(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("fuzz")
    with SlackStandIn(token=TOKEN) as standin:
        settings_ = Settings(
            data_dir=data,
            index={"dir": sample_index},  # type: ignore[arg-type]
            slack={"bot_token": TOKEN, "signing_secret": SECRET, "api_url": standin.base_url},  # type: ignore[arg-type]
            alerts={"channel": "C0ALERTS"},  # type: ignore[arg-type]
        )
        with running_bot(settings_) as url:
            yield url, data


def bodies() -> st.SearchStrategy[bytes]:
    structured = st.one_of(
        JSONISH.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(TEXT, TEXT, max_size=6).map(lambda d: urlencode(d).encode()),
        JSONISH.map(lambda v: urlencode({"payload": json.dumps(v)}).encode()),
        st.sampled_from([b"{", b"payload=null", b"payload=%7B", b"\xff\xfe\x00", b""]),
    )
    return st.one_of(st.binary(max_size=2000), structured)


@FUZZ
@given(
    body=bodies(),
    content_type=CONTENT_TYPES,
    signed=st.booleans(),
    timestamp=st.one_of(
        st.none(),
        # what an HTTP client can send: h11 refuses a value with spaces at either end
        st.text(HEADER_CHARS, max_size=12).filter(lambda t: t == t.strip()),
        st.integers(-10, 10**12).map(str),
    ),
)
def test_slack_events_never_answer_5xx(
    fuzz_bot: tuple[str, Path], body: bytes, content_type: str, signed: bool, timestamp: str | None
) -> None:  # fmt: skip
    url, _ = fuzz_bot
    headers = {"Content-Type": content_type}
    if signed:
        ts = str(int(time.time()))
        sender = SignedSender(url, SECRET)
        headers.update(sender.signed_headers("", timestamp=int(ts), content_type=content_type))
        from bot.http.guard import signature_for

        headers["X-Slack-Signature"] = signature_for(SECRET, ts.encode(), body)
    elif timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    response = httpx.post(url, content=body, headers=headers, timeout=10)
    assert response.status_code < 500, response.text
    if not signed:
        assert response.status_code in (400, 401, 413)


@FUZZ
@given(
    text=TEXT, user=st.one_of(st.just("U0ALICE"), TEXT), channel=st.one_of(st.just("C0OPS"), TEXT)
)
def test_signed_commands_are_answered_or_refused_in_the_ack(
    fuzz_bot: tuple[str, Path], text: str, user: str, channel: str
) -> None:
    url, _ = fuzz_bot
    with SignedSender(url, SECRET) as sender:
        response = sender.slash_command(f"ask {text}", user_id=user, channel_id=channel)
    assert response.status_code == 200


def notifications() -> st.SearchStrategy[dict[str, Any]]:
    times = st.one_of(
        st.none(),
        st.sampled_from(["2026-11-23T10:00:00Z", "2026-11-23T10:00:00", "2026-11-23T12:00:00+02:00",
                         "0001-01-01T00:00:00Z", "not a time"]),
    )  # fmt: skip
    alert = st.fixed_dictionaries(
        {"status": st.sampled_from(["firing", "resolved"]),
         "labels": st.dictionaries(TEXT, TEXT, max_size=4).map(lambda d: {**d, "alertname": "F"}),
         "annotations": st.dictionaries(TEXT, TEXT, max_size=3),
         "startsAt": times, "endsAt": times},
    ).map(lambda a: {k: v for k, v in a.items() if v is not None})  # fmt: skip
    return st.fixed_dictionaries(
        {"version": st.sampled_from(["4", "4", "3"]),
         "groupKey": st.one_of(TEXT, st.text(min_size=1000, max_size=3000)),
         "status": st.sampled_from(["firing", "resolved", "unknown"]),
         "receiver": TEXT,
         "groupLabels": st.dictionaries(TEXT, TEXT, max_size=3),
         "commonLabels": st.dictionaries(TEXT, TEXT, max_size=3),
         "alerts": st.lists(alert, max_size=4)},
    )  # fmt: skip


@FUZZ
@given(body=st.one_of(notifications().map(lambda n: json.dumps(n).encode()), bodies()))
def test_the_webhook_never_answers_5xx(fuzz_bot: tuple[str, Path], body: bytes) -> None:
    url, _ = fuzz_bot
    webhook = url.replace("/slack/events", "/alertmanager")
    response = httpx.post(webhook, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (202, 400, 413, 422), response.text


def test_every_accepted_job_is_done_and_the_bot_is_up(fuzz_bot: tuple[str, Path]) -> None:
    """Runs after the fuzzing above (file order): nothing it had accepted is lost."""
    url, data = fuzz_bot
    queue = JobQueue(Store(f"sqlite:///{data / 'opsbot.sqlite'}").engine)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [j.state for j in queue.jobs()]
        if all(s == DONE for s in states):
            break
        time.sleep(0.5)
    failed = [(j.kind, j.error) for j in queue.jobs() if j.state != DONE]
    assert states and not failed
    assert httpx.get(url.replace("/slack/events", "/readyz")).status_code == 200
