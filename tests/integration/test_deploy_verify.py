"""Verification after the switch against a real Prometheus that scrapes the bot's router:
checks on the router's own metrics pass or fail a deploy; a failed one goes back to the old
version; an inconclusive one waits for Promote / Roll back; with OPSBOT_DEPLOY_ROLLBACK=ask
a failed one waits for Roll back. Each ends with a chart of the checked series."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.deploys.requests import FAILED, ROLLED_BACK, SUCCEEDED, VERIFYING, Requests
from bot.deploys.targets.local import stop_all
from bot.net import free_port
from bot.settings import Settings
from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn
from bot.store import Store
from evals.promstack import PrometheusServer, require_binaries
from tests.integration.conftest import SECRET, running_bot
from tests.integration.processes import wait_until
from tests.integration.test_deploy_approvals import ALICE, BOB, card, click, ephemerals
from tests.integration.test_deploy_local import served_by
from tools.deploy.registry import Registry

pytestmark = pytest.mark.integration
DONE = (SUCCEEDED, FAILED, ROLLED_BACK)
#: Passes while nothing through the stable address answered 5xx.
NO_ERRORS = """
    - name: no-5xx
      query: >-
        sum(opsbot_model_requests_total{{model="gemma",env="staging",code=~"5.."}})
        or vector(0)
      initialDelay: 2s
      count: 2
      interval: 1s
      successCondition: result[0] == 0
"""
#: Fails as soon as the router has counted a request answered by v2 (the smoke request is).
V2_SILENT = """
    - name: v2-silent
      query: >-
        sum(opsbot_model_requests_total{{model="gemma",env="staging",version="v2"}})
        or vector(0)
      initialDelay: 2s
      count: 2
      interval: 1s
      failureCondition: result[0] >= 1
"""
#: Neither condition matches 0.5: inconclusive.
UNSURE = """
    - name: unsure
      query: vector(0.5)
      count: 1
      interval: 1s
      successCondition: result[0] < 0.05
      failureCondition: result[0] > 0.9
"""


def checks_file(path: Path, *checks: str) -> None:
    path.write_text("gemma:\n  staging:" + "".join(c.format() for c in checks))


@pytest.fixture
def scraped(
    bot_settings: Settings, gemma: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[SignedSender, str, Settings, Path]]:
    require_binaries(alertmanager=False)
    rollback = getattr(request, "param", "auto")
    port, checks = free_port(), tmp_path / "checks.yaml"
    checks_file(checks, NO_ERRORS)
    prometheus = PrometheusServer(tmp_path / "tsdb", [f"127.0.0.1:{port}"],
                                  workdir=tmp_path / "prom", scrape_interval="1s")  # fmt: skip
    with prometheus:
        deploy = bot_settings.deploy.model_copy(
            update={"approvers": {"staging": [BOB]}, "checks": checks, "rollback": rollback}
        )
        settings = bot_settings.model_copy(update={
            "deploy": deploy,
            "prometheus": bot_settings.prometheus.model_copy(update={"url": prometheus.url}),
        })  # fmt: skip
        registry = Registry(Store(settings.database_url).engine)
        for version, ctx in (("v1", 512), ("v2", 1024)):
            params = {"served_name": f"gemma-{version}", "context_length": ctx}
            registry.register("gemma", version, str(gemma), by=ALICE, params=params)
        try:
            with running_bot(settings, port=port) as url:
                yield SignedSender(url, SECRET), url.removesuffix("/slack/events"), settings, checks
        finally:
            stop_all(settings.data_dir)


def deploy(sender: SignedSender, standin: SlackStandIn, requests: Requests, version: str,
           until: tuple[str, ...] = DONE) -> None:  # fmt: skip
    standin.clear()
    sender.slash_command(f"deploy gemma {version} staging", user_id=ALICE)
    click(sender, card(standin), BOB)

    def arrived() -> bool:
        last = requests.history("gemma")[-1]
        return last.state in until and (until == DONE or bool(last.verdict))

    wait_until(arrived, timeout=120)


def verdict_card(standin: SlackStandIn, action: str) -> RecordedCall:
    return standin.wait_for(
        "chat.update", lambda c: f'"{action}"' in json.dumps(c.params.get("blocks")), 60
    )


def buttons(call: RecordedCall) -> list[str]:
    actions = [b for b in call.params["blocks"] if b["type"] == "actions"]
    return [e["text"]["text"] for e in actions[-1]["elements"]]


def test_checks_on_the_routers_metrics_pass_then_fail_and_roll_back(
    scraped: tuple[SignedSender, str, Settings, Path], standin: SlackStandIn
) -> None:
    sender, base, settings, checks = scraped
    requests = Requests(Store(settings.database_url).engine)
    deploy(sender, standin, requests, "v1")
    first = requests.history("gemma")[-1]
    assert first.state == SUCCEEDED, first.note
    said = standin.wait_for("chat.postMessage", lambda c: "check *no-5xx* #2" in c.params["text"])
    assert "→ 0 (success if `result[0] == 0`): Successful" in said.params["text"]
    standin.wait_for("files.completeUploadExternal", timeout=30)  # the chart of the checks

    checks_file(checks, NO_ERRORS, V2_SILENT)
    deploy(sender, standin, requests, "v2")
    second = requests.history("gemma")[-1]
    assert second.state == ROLLED_BACK and "verification failed" in second.note, second.note
    failed = standin.wait_for("chat.postMessage", lambda c: "check *v2-silent*" in c.params["text"])
    assert "Failed" in failed.params["text"]
    assert served_by(base) == "gemma-v1"
    standin.wait_for("chat.postMessage", lambda c: "v1 serves again" in c.params["text"], 30)


def test_an_inconclusive_verification_waits_for_promote(
    scraped: tuple[SignedSender, str, Settings, Path], standin: SlackStandIn
) -> None:
    sender, base, settings, checks = scraped
    requests = Requests(Store(settings.database_url).engine)
    deploy(sender, standin, requests, "v1")
    checks_file(checks, UNSURE)
    deploy(sender, standin, requests, "v2", until=(VERIFYING,))
    waiting = verdict_card(standin, "deploy_promote")
    assert buttons(waiting) == ["Promote", "Roll back"]
    assert served_by(base) == "gemma-v2"  # the new version serves while a person decides

    click(sender, waiting, ALICE, action="deploy_promote")  # the requester may not decide
    wait_until(lambda: bool(ephemerals(standin, ALICE)))
    assert requests.history("gemma")[-1].state == VERIFYING
    click(sender, waiting, BOB, action="deploy_promote")
    wait_until(lambda: requests.history("gemma")[-1].state == SUCCEEDED, timeout=60)
    assert served_by(base) == "gemma-v2"
    click(sender, waiting, BOB, action="deploy_rollback", n=1)  # too late: decided
    wait_until(lambda: any("already succeeded" in t for t in ephemerals(standin, BOB)))
    assert requests.history("gemma")[-1].state == SUCCEEDED


@pytest.mark.parametrize("scraped", ["ask"], indirect=True)
def test_with_rollback_ask_a_failed_verification_waits_for_roll_back(
    scraped: tuple[SignedSender, str, Settings, Path], standin: SlackStandIn
) -> None:
    sender, base, settings, checks = scraped
    requests = Requests(Store(settings.database_url).engine)
    deploy(sender, standin, requests, "v1")
    checks_file(checks, V2_SILENT)
    deploy(sender, standin, requests, "v2", until=(VERIFYING,))
    waiting = verdict_card(standin, "deploy_rollback")
    assert buttons(waiting) == ["Roll back"]
    assert requests.history("gemma")[-1].verdict == "failed"
    click(sender, waiting, BOB, action="deploy_rollback")
    wait_until(lambda: requests.history("gemma")[-1].state == ROLLED_BACK, timeout=60)
    assert served_by(base) == "gemma-v1"
    audit = [r.action for r in Store(settings.database_url).audit_log(limit=20)]
    assert "rollback" in audit and "rolled back" in audit


#: The model suite against the new version before the switch; contains ≥ MIN.
GATE = """
    - kind: eval
      name: quality
      suite: model
      metric: contains
      min: {minimum}
"""


def test_an_eval_gate_keeps_a_version_below_its_threshold_from_traffic(
    scraped: tuple[SignedSender, str, Settings, Path], standin: SlackStandIn
) -> None:
    sender, base, settings, checks = scraped
    requests = Requests(Store(settings.database_url).engine)
    checks_file(checks, GATE.replace("{minimum}", "0.0"))  # any score opens it
    deploy(sender, standin, requests, "v1")
    first = requests.history("gemma")[-1]
    assert first.state == SUCCEEDED, first.note
    opened = standin.wait_for(
        "chat.postMessage", lambda c: "eval gate *quality*" in c.params["text"]
    )
    assert "→ open" in opened.params["text"] and "contains = " in opened.params["text"]

    checks_file(checks, GATE.replace("{minimum}", "1.01"))  # no score reaches it
    deploy(sender, standin, requests, "v2")
    second = requests.history("gemma")[-1]
    assert second.state == FAILED and "eval quality: contains" in second.note, second.note
    assert "got no traffic" in second.note
    assert served_by(base) == "gemma-v1"  # never switched
    card = json.dumps(standin.calls_to("chat.update")[-1].params)
    assert "failed" in card
