"""Evals from Slack through the signed path: `/ops eval run` is acknowledged at once and runs
as a durable job whose status message ends with the report; `/ops eval report` and the
agent answer from the stored runs; bad input gets the usage or the reason."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from evals.store import EvalStore
from evals.suite import load_suite
from tests.integration.conftest import SECRET, running_bot
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def bot(bot_settings: Settings) -> Iterator[SignedSender]:
    with running_bot(bot_settings) as url:
        yield SignedSender(url, SECRET)


def test_an_eval_run_from_slack_reports_in_the_channel(
    bot: SignedSender, standin: SlackStandIn
) -> None:
    acked = bot.slash_command("eval run tools")
    assert acked.status_code == 200 and "Running the tools suite (dev)" in acked.text
    status = standin.wait_for(
        "chat.postMessage", lambda c: "Eval run of *tools*" in c.params["text"]
    )
    report = standin.wait_for("chat.update", lambda c: "tool_accuracy" in c.params["text"], 60)
    assert report.params["channel"] == status.params["channel"]
    assert "eval #1 tools (dev)" in report.params["text"] and "PASSED" in report.params["text"]

    url = standin.response_url()
    bot.slash_command("eval report tools", response_url=url)
    shown = standin.wait_for("response_url", lambda c: "call_accuracy" in json.dumps(c.params))
    assert "eval #1" in json.dumps(shown.params)

    bot.slash_command("ask how did the last eval of the tools suite go?", response_url=url)
    answered = standin.wait_for(
        "chat.update", lambda c: "tools (dev) #1: passed" in json.dumps(c.params), 60
    )
    assert answered.params["channel"] == "C0OPS"


def test_bad_eval_commands_are_explained(bot: SignedSender) -> None:
    assert "no suite 'poetry'; known:" in bot.slash_command("eval run poetry").text
    assert "Usage:" in bot.slash_command("eval run tools sometimes").text
    assert "Usage:" in bot.slash_command("eval dance").text


def test_a_scheduled_report_arrives_with_its_chart_and_survives_a_restart(
    bot_settings: Settings, standin: SlackStandIn
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update
    from sqlmodel import Session

    from bot.store import Store
    from evals.schedule import EvalSchedule, Schedules

    standin.channels["quiet"] = ("C0QUIET", False)
    url = standin.response_url()
    with running_bot(bot_settings) as events:
        bot = SignedSender(events, SECRET)
        bot.slash_command('eval schedule tools "0 8 * * 1-5" #quiet', response_url=url)
        standin.wait_for("response_url", lambda c: "I am not in #quiet" in json.dumps(c.params))
        bot.slash_command('eval schedule tools "every day" #ops', response_url=url)
        standin.wait_for("response_url", lambda c: "not a cron expression" in json.dumps(c.params))
        bot.slash_command(
            'eval schedule tools "0 8 * * 1-5" <#C0OPS|ops> failure', response_url=url
        )
        standin.wait_for("response_url", lambda c: "Schedule #1: tools" in json.dumps(c.params))
        bot.slash_command('eval schedule tools "0 8 * * *" #ops', response_url=url)
        standin.wait_for("response_url", lambda c: "Schedule #2: tools" in json.dumps(c.params))
    engine = Store(bot_settings.database_url).engine
    with Session(engine) as session:  # after the restart, schedule #2 is due
        session.execute(update(EvalSchedule).where(EvalSchedule.id == 2)  # type: ignore[arg-type]
                        .values(next_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        session.commit()
    with running_bot(bot_settings) as events:
        summary = standin.wait_for(
            "chat.postMessage", lambda c: "eval tools: passed" in c.params.get("text", ""), 60
        )
        blocks = json.dumps(summary.params["blocks"])
        threshold = load_suite("tools").config.metrics["tool_accuracy"].threshold
        assert "tool_accuracy" in blocks and f"threshold {threshold:g}" in blocks
        assert "git " in blocks and "95 % CI" in blocks and "no judge" in blocks
        assert "pipeline errors 0" in blocks and "judge errors 0 (0 timeouts)" in blocks
        standin.wait_for("chat.postMessage", lambda c: "Every case passed" in c.params["text"]
                         or "Worst cases" in c.params["text"], 30)  # fmt: skip
        chart = standin.wait_for("files.completeUploadExternal", timeout=30)
        assert chart.params["channel_id"] == "C0OPS"
        (last,) = EvalStore(engine).runs("tools", limit=1)
        scored = [n for n, m in (last.metrics or {}).items() if m["value"] is not None]
        assert len(scored) >= 2  # one chart per metric, each on its own scale
        wait_until(lambda: len(standin.calls_to("files.completeUploadExternal")) == len(scored))
        exported = httpx.get(events.removesuffix("/slack/events") + "/metrics").text
        counted = re.search(r'opsbot_eval_runs_total\{outcome="passed",suite="tools"\} (\S+)',
                            exported)  # fmt: skip
        assert counted and float(counted.group(1)) >= 1  # (the registry is this process's)
        SignedSender(events, SECRET).slash_command("eval schedules", response_url=url)
        listed = standin.wait_for("response_url", lambda c: "#2 tools" in json.dumps(c.params))
        assert "#1 tools" in json.dumps(listed.params)
    assert [s.id for s in Schedules(engine).all()] == [1, 2]  # kept across restarts
