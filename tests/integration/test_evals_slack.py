"""Evals from Slack through the signed path: `/ops eval run` is acknowledged at once and runs
as a durable job whose status message ends with the report; `/ops eval report` and the
agent answer from the stored runs; bad input gets the usage or the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from tests.integration.conftest import SECRET, running_bot

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
