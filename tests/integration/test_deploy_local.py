"""A real local deploy: the packaged Gemma GGUF registered as versions that differ in their
serving parameters, deployed through the signed Slack path with an approval, served by
llama.cpp behind the stable address; a version that cannot start leaves the old one
serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.deploys.requests import FAILED, ROLLED_BACK, SUCCEEDED, Requests
from bot.deploys.targets.local import stop_all
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from evals.promstack import PromStack
from tests.integration.conftest import SECRET, running_bot
from tests.integration.processes import wait_until
from tests.integration.test_deploy_approvals import ALICE, BOB, card, click
from tests.metrics.conftest import prom_stack as _real_prometheus  # noqa: F401 (fixture)
from tools.deploy.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture
def local_bot(bot_settings: Settings, gemma: Path) -> Iterator[tuple[SignedSender, str, Settings]]:
    deploy = bot_settings.deploy.model_copy(update={"approvers": {"staging": [BOB]}})
    settings = bot_settings.model_copy(update={"deploy": deploy})
    registry = Registry(Store(settings.database_url).engine)
    registry.register("gemma", "v1", str(gemma), by=ALICE,
                      params={"served_name": "gemma-v1", "context_length": 512})  # fmt: skip
    registry.register("gemma", "v2", str(gemma), by=ALICE,
                      params={"served_name": "gemma-v2", "context_length": 1024})  # fmt: skip
    registry.register("gemma", "v3-broken", str(gemma), by=ALICE,
                      params={"served_name": "gemma-v3", "args": "--no-such-flag 1"})  # fmt: skip
    try:
        with running_bot(settings) as url:
            yield SignedSender(url, SECRET), url.removesuffix("/slack/events"), settings
    finally:  # model servers outlive the bot by design; the test's go with it
        stop_all(settings.data_dir)


def deploy(sender: SignedSender, standin: SlackStandIn, version: str) -> None:
    standin.clear()
    sender.slash_command(f"deploy gemma {version} staging", user_id=ALICE)
    click(sender, card(standin), BOB)


def served_by(base: str, model: str = "gemma") -> str:
    """The served name that answers a completion through the model's stable address."""
    reply = httpx.post(f"{base}/models/{model}/staging/v1/completions",
                       json={"prompt": "Hello", "max_tokens": 1}, timeout=60)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return str(reply.json()["model"])


def test_deploys_switch_the_stable_address_and_a_broken_version_changes_nothing(
    local_bot: tuple[SignedSender, str, Settings], standin: SlackStandIn
) -> None:
    sender, base, settings = local_bot
    requests = Requests(Store(settings.database_url).engine)
    nothing = httpx.post(f"{base}/models/gemma/staging/v1/completions", json={"prompt": "x"})
    assert nothing.status_code == 404 and "nothing serves gemma" in nothing.text

    deploy(sender, standin, "v1")
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    first = requests.history("gemma")[-1]
    assert first.state == SUCCEEDED, first.note
    assert served_by(base) == "gemma-v1"
    as_curl_sends_it = httpx.post(  # `curl -d '{…}'` says form-encoded; the body is JSON
        f"{base}/models/gemma/staging/v1/completions", content=b'{"prompt":"Hi","max_tokens":1}',
        headers={"content-type": "application/x-www-form-urlencoded"}, timeout=60,
    )  # fmt: skip
    assert as_curl_sends_it.status_code == 200, as_curl_sends_it.text

    deploy(sender, standin, "v2")
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    second = requests.history("gemma")[-1]
    assert second.state == SUCCEEDED and second.from_version == "v1" and second.executions == 1
    assert served_by(base) == "gemma-v2"
    standin.wait_for("chat.postMessage", lambda c: "serves staging at" in c.params["text"], 30)

    deploy(sender, standin, "v3-broken")
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    broken = requests.history("gemma")[-1]
    assert broken.state == FAILED and "exited" in broken.note
    note = standin.wait_for(
        "chat.postMessage", lambda c: "v2 keeps serving" in c.params["text"], 30
    )
    assert "no-such-flag" in note.params["text"] or "error" in note.params["text"].lower()
    assert served_by(base) == "gemma-v2"
    standin.clear()
    sender.slash_command("rollback gemma staging", user_id=ALICE)  # back to what served before v2
    click(sender, card(standin), BOB)
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    back = requests.history("gemma")[-1]
    assert (back.action, back.version, back.from_version, back.state) == (
        "rollback", "v1", "v2", SUCCEEDED)  # fmt: skip
    assert served_by(base) == "gemma-v1"
    deploy(sender, standin, "v2")  # v2 again, so that its metrics are the newest
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    assert served_by(base) == "gemma-v2"
    exported = httpx.get(f"{base}/metrics").text
    assert (
        'opsbot_model_requests_total{code="200",env="staging",model="gemma",version="v2"}'
        in exported
    )
    history = [
        json.loads(json.dumps({"v": r.version, "s": r.state})) for r in requests.history("gemma")
    ]
    assert history == [{"v": "v1", "s": SUCCEEDED}, {"v": "v2", "s": SUCCEEDED},
                       {"v": "v3-broken", "s": FAILED}, {"v": "v1", "s": SUCCEEDED},
                       {"v": "v2", "s": SUCCEEDED}]  # fmt: skip


@pytest.fixture
def checked_bot(
    bot_settings: Settings, gemma: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[SignedSender, str, Settings, Path]]:
    prometheus_stack: PromStack = request.getfixturevalue("_real_prometheus")
    checks = tmp_path / "checks.yaml"
    deploy = bot_settings.deploy.model_copy(update={"approvers": {"staging": [BOB]},
                                                    "checks": checks})  # fmt: skip
    prometheus = bot_settings.prometheus.model_copy(update={"url": prometheus_stack.url})
    settings = bot_settings.model_copy(update={"deploy": deploy, "prometheus": prometheus})
    registry = Registry(Store(settings.database_url).engine)
    for version, ctx in (("v1", 512), ("v2", 1024)):
        params = {"served_name": f"gemma-{version}", "context_length": ctx}
        registry.register("gemma", version, str(gemma), by=ALICE, params=params)
    try:
        with running_bot(settings) as url:
            yield SignedSender(url, SECRET), url.removesuffix("/slack/events"), settings, checks
    finally:
        stop_all(settings.data_dir)


CHECK = """gemma:
  staging:
    - name: error-ratio
      query: vector({value})
      count: 2
      interval: 1s
      successCondition: result[0] < 0.05
"""


def test_failing_checks_on_a_real_prometheus_roll_back_to_the_old_version(
    checked_bot: tuple[SignedSender, str, Settings, Path], standin: SlackStandIn
) -> None:
    sender, base, settings, checks = checked_bot
    requests = Requests(Store(settings.database_url).engine)
    checks.write_text(CHECK.format(value=0.01))
    deploy(sender, standin, "v1")
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED))
    assert requests.history("gemma")[-1].state == SUCCEEDED, requests.history("gemma")[-1].note
    standin.wait_for("chat.postMessage", lambda c: "Verification: Successful" in c.params["text"])

    checks.write_text(CHECK.format(value=0.5))
    deploy(sender, standin, "v2")
    wait_until(lambda: requests.history("gemma")[-1].state in (SUCCEEDED, FAILED, ROLLED_BACK))
    second = requests.history("gemma")[-1]
    assert second.state == ROLLED_BACK and "verification failed" in second.note
    measured = standin.wait_for("chat.postMessage", lambda c: "error-ratio" in c.params["text"])
    assert "0.5" in measured.params["text"] and "Failed" in measured.params["text"]
    assert served_by(base) == "gemma-v1"  # the old version answers through the address again
    assert Registry(Store(settings.database_url).engine).live_version("gemma", "staging") == "v1"
