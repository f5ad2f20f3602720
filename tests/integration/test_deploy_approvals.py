"""Deploy requests through the signed Slack path: a card with Approve / Reject, clicks
checked against who may approve and the plan they saw, decided once by compare-and-set,
and the agent's paused thread resumed with the decision."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.deploys.requests import (
    APPROVED,
    CANCELLED,
    FAILED,
    PENDING,
    REJECTED,
    ROLLED_BACK,
    RUNNING,
    SUCCEEDED,
    VERIFYING,
    DeployRequest,
    Requests,
)
from bot.settings import Settings
from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn
from bot.store import Store
from tests.integration.conftest import SECRET, running_bot
from tests.integration.processes import wait_until
from tools.deploy.registry import Registry

pytestmark = pytest.mark.integration
ALICE, BOB, CAROL, EVE = "U0ALICE", "U0BOB", "U0CAROL", "U0EVE"
APPROVED_OR_LATER = (APPROVED, RUNNING, VERIFYING, SUCCEEDED, FAILED, ROLLED_BACK)


@pytest.fixture
def deploy_settings(bot_settings: Settings) -> Settings:
    deploy = bot_settings.deploy.model_copy(
        update={"approvers": {"staging": [BOB, "S0OPS"], "production": [BOB, CAROL]},
                "approvals_required": {"production": 2}}
    )  # fmt: skip
    return bot_settings.model_copy(update={"deploy": deploy})


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 4096)
    return path


@pytest.fixture
def bot(deploy_settings: Settings, standin: SlackStandIn, gguf: Path) -> Iterator[SignedSender]:
    standin.usergroups["S0OPS"] = [CAROL]
    store = Store(deploy_settings.database_url)
    registry = Registry(store.engine)
    registry.register("gemma", "v1", str(gguf), params={"context_length": 2048}, by=ALICE)
    registry.register("gemma", "v2", str(gguf), params={"context_length": 4096}, by=ALICE)
    registry.set_live("gemma", "staging", "v1")
    registry.set_live("gemma", "production", "v1")
    with running_bot(deploy_settings) as url:
        yield SignedSender(url, SECRET)


def card(standin: SlackStandIn) -> RecordedCall:
    return standin.wait_for(
        "chat.update", lambda c: '"deploy_approve"' in json.dumps(c.params.get("blocks")), 60
    )


def click(bot: SignedSender, card_call: RecordedCall, user: str, action: str = "deploy_approve",
          n: int = 0) -> httpx.Response:  # fmt: skip
    blocks = card_call.params["blocks"]
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    button = next(b for b in buttons if b["action_id"] == action)
    payload = {
        "type": "block_actions", "user": {"id": user}, "channel": {"id": "C0OPS"},
        "container": {"type": "message", "message_ts": card_call.params["ts"],
                      "channel_id": "C0OPS", "thread_ts": thread_of(card_call)},
        "trigger_id": f"trig-{user}-{n}-{time.monotonic_ns()}",
        "actions": [{"action_id": action, "block_id": "b", "value": button["value"],
                     "type": "button", "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    return bot.interaction(payload)


def thread_of(card_call: RecordedCall) -> str | None:
    return card_call.params.get("thread_ts")


def ephemerals(standin: SlackStandIn, user: str) -> list[str]:
    return [c.params["text"] for c in standin.calls_to("chat.postEphemeral")
            if c.params.get("user") == user]  # fmt: skip


def requests_of(settings: Settings) -> Requests:
    return Requests(Store(settings.database_url).engine)


def test_a_deploy_is_approved_once_by_someone_who_may(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    assert bot.slash_command("deploy gemma v2 staging", user_id=ALICE).status_code == 200
    shown = card(standin)
    blocks = json.dumps(shown.params["blocks"])
    assert "v1" in blocks and "v2" in blocks and "context_length" in blocks and "2048" in blocks
    assert "Approve" in blocks and "Reject" in blocks
    requests = requests_of(deploy_settings)
    (request,) = requests.history("gemma")
    assert request.state == PENDING and request.requested_by == ALICE

    assert click(bot, shown, ALICE).status_code == 200  # the requester
    wait_until(lambda: bool(ephemerals(standin, ALICE)))
    assert "someone else" in ephemerals(standin, ALICE)[0]
    click(bot, shown, EVE)  # not an approver
    wait_until(lambda: bool(ephemerals(standin, EVE)))
    assert "not an approver" in ephemerals(standin, EVE)[0]
    assert requests.get(request.id).state == PENDING  # type: ignore[arg-type, union-attr]

    click(bot, shown, CAROL)  # an approver through the S0OPS user group
    # approved, and maybe already running or failed (the file is no model) by the next poll
    wait_until(lambda: requests.get(request.id).state in APPROVED_OR_LATER)  # type: ignore[arg-type, union-attr]
    approvals = requests.approvals(requests.get(request.id))  # type: ignore[arg-type]
    assert [a.user for a in approvals] == [CAROL]
    final = standin.wait_for(
        "chat.update",
        lambda c: c.params.get("ts") == shown.params["ts"] and "approved" in c.params["text"],
        30,
    )
    assert '"actions"' not in json.dumps(final.params["blocks"])  # the buttons are gone
    click(bot, shown, BOB)  # a late click on a decided card
    wait_until(lambda: bool(ephemerals(standin, BOB)))
    late = ephemerals(standin, BOB)[0]
    # "already approved", or already running/failed when the execution moved it first
    assert "is already" in late and f"decided by <@{CAROL}>" in late, late
    wait_until(lambda: any("is approved" in c.params["text"]
                           for c in standin.calls_to("chat.postMessage")))  # fmt: skip


def test_racing_approvals_decide_once_and_production_needs_two(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    bot.slash_command("deploy gemma v2 production", user_id=ALICE)
    shown = card(standin)
    requests = requests_of(deploy_settings)
    (request,) = requests.history("gemma")
    click(bot, shown, BOB)
    wait_until(lambda: len(requests.approvals(requests.get(request.id))) == 1)  # type: ignore[arg-type]
    assert requests.get(request.id).state == PENDING  # type: ignore[arg-type, union-attr]
    senders = [threading.Thread(target=click, args=(bot, shown, user, "deploy_approve", i))
               for i in range(10) for user in (BOB, CAROL)]  # fmt: skip
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    # approved, and maybe already running or done (the file is no model): past pending
    wait_until(lambda: requests.get(request.id).state not in (PENDING,))  # type: ignore[arg-type, union-attr]
    assert requests.get(request.id).state != REJECTED  # type: ignore[arg-type, union-attr]
    time.sleep(1.5)
    resumed = [c for c in standin.calls_to("chat.postMessage") if "is approved" in c.params["text"]]
    assert len(resumed) == 1  # the paused thread resumed once
    approvers = {a.user for a in requests.approvals(requests.get(request.id))}  # type: ignore[arg-type]
    assert approvers == {BOB, CAROL}
    wait_until(lambda: requests.get(request.id).executions > 0)  # type: ignore[arg-type, union-attr]
    time.sleep(1)
    assert requests.get(request.id).executions == 1  # type: ignore[arg-type, union-attr]


def test_a_second_request_is_refused_and_a_rejection_ends_the_first(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    bot.slash_command("deploy gemma v2 staging", user_id=ALICE)
    shown = card(standin)
    standin.clear()
    bot.slash_command("deploy gemma v2 staging", user_id=CAROL)
    refused = standin.wait_for("chat.update", lambda c: "No deploy request" in c.params["text"], 60)
    assert "holds gemma in staging" in refused.params["text"]
    click(bot, shown, BOB, "deploy_reject")
    requests = requests_of(deploy_settings)
    wait_until(lambda: requests.history("gemma")[0].state == REJECTED)
    standin.wait_for("chat.postMessage", lambda c: "rejected by" in c.params["text"], 30)
    (request,) = requests.history("gemma")
    url = standin.response_url()
    bot.slash_command("deployments gemma staging", user_id=EVE, response_url=url)
    listed = standin.wait_for("response_url", lambda c: f"#{request.id}" in json.dumps(c.params))
    assert "v1 → v2 in staging: rejected" in json.dumps(listed.params, ensure_ascii=False)
    bot.slash_command("audit 2", user_id=EVE, response_url=url)
    audit = standin.wait_for("response_url", lambda c: "reject:" in json.dumps(c.params))
    lines = json.loads(json.dumps(audit.params))["text"].splitlines()
    assert len(lines) == 2 and f"<@{BOB}> reject: #{request.id}" in lines[0]
    assert f"<@{ALICE}> request deploy: #{request.id}" in lines[1]


def test_a_pending_request_is_cancelled_by_its_requester_not_by_others(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    bot.slash_command("deploy gemma v2 staging", user_id=ALICE)
    shown = card(standin)
    requests = requests_of(deploy_settings)
    (request,) = requests.history("gemma")
    url = standin.response_url()
    bot.slash_command(f"cancel {request.id}", user_id=EVE, response_url=url)  # neither
    refused = standin.wait_for("response_url", lambda c: "may cancel" in json.dumps(c.params))
    assert ALICE in json.dumps(refused.params) and requests.get(request.id).state == PENDING  # type: ignore[arg-type, union-attr]
    bot.slash_command(f"cancel #{request.id}", user_id=ALICE, response_url=url)
    standin.wait_for("response_url", lambda c: "is cancelled" in json.dumps(c.params))
    assert requests.get(request.id).state == CANCELLED  # type: ignore[arg-type, union-attr]
    drawn = standin.wait_for("chat.update", lambda c: "cancelled" in c.params["text"], 30)
    assert '"actions"' not in json.dumps(drawn.params["blocks"])  # the buttons are gone
    click(bot, shown, BOB)  # a click on the cancelled card changes nothing
    wait_until(lambda: any("already cancelled" in t for t in ephemerals(standin, BOB)))
    assert requests.get(request.id).executions == 0  # type: ignore[arg-type, union-attr]
    bot.slash_command(f"cancel {request.id}", user_id=ALICE, response_url=url)  # twice
    standin.wait_for("response_url", lambda c: "only a pending one" in json.dumps(c.params))


def test_unknown_versions_live_versions_and_bad_clicks_are_explained(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    bot.slash_command("deploy gemma v9 staging", user_id=ALICE)
    unknown = standin.wait_for("chat.update", lambda c: "No deploy request" in c.params["text"], 60)
    assert "no version 'v9'" in unknown.params["text"] and "v1, v2" in unknown.params["text"]
    bot.slash_command("deploy gemma v1 staging", user_id=ALICE)
    standin.wait_for("chat.update", lambda c: "live in staging already" in c.params["text"], 60)
    action = {"action_id": "deploy_approve", "value": "999", "action_ts": "1.2"}
    forged = {"type": "block_actions", "user": {"id": BOB}, "channel": {"id": "C0OPS"},
              "actions": [action]}  # fmt: skip
    assert bot.interaction(forged, sign=False).status_code == 401
    assert bot.interaction(forged).status_code == 200
    wait_until(lambda: bool(ephemerals(standin, BOB)))
    assert "does not exist" in ephemerals(standin, BOB)[0]


def test_a_changed_plan_voids_earlier_approvals(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    bot.slash_command("deploy gemma v2 production", user_id=ALICE)
    shown = card(standin)
    requests = requests_of(deploy_settings)
    (request,) = requests.history("gemma")
    click(bot, shown, BOB)
    wait_until(lambda: len(requests.approvals(requests.get(request.id))) == 1)  # type: ignore[arg-type]
    Registry(Store(deploy_settings.database_url).engine).set_live(
        "gemma", "production", "v0-hotfix"
    )
    Registry(Store(deploy_settings.database_url).engine).register(
        "gemma", "v0-hotfix", "hf://org/gemma-hotfix", params={}, by=CAROL
    )
    click(bot, shown, CAROL)
    wait_until(lambda: bool(ephemerals(standin, CAROL)))
    assert "plan changed" in ephemerals(standin, CAROL)[0]
    latest = requests.get(request.id)
    assert latest is not None and latest.state == PENDING
    assert latest.from_version == "v1" and latest.plan["from_version"] == "v0-hotfix"
    assert requests.approvals(latest) == []  # BOB's approval was of the old plan
    voided = standin.wait_for("chat.update", lambda c: "void" in json.dumps(c.params["blocks"]), 30)
    assert voided.params["ts"] == shown.params["ts"]


def test_models_register_and_deployments_answer_the_asker(
    bot: SignedSender, standin: SlackStandIn, gguf: Path
) -> None:
    url = standin.response_url()
    bot.slash_command(f"model register gemma v3 {gguf} context_length=8192", response_url=url)
    reply = standin.wait_for(
        "response_url", lambda c: "Registered gemma v3" in json.dumps(c.params)
    )
    assert "sha256" in json.dumps(reply.params)
    bot.slash_command("models", response_url=url)
    listing = standin.wait_for("response_url", lambda c: "live in" in json.dumps(c.params))
    assert "gemma" in json.dumps(listing.params) and "v3" in json.dumps(listing.params)


def test_a_request_survives_a_restart_and_its_card_still_works(
    deploy_settings: Settings, standin: SlackStandIn, gguf: Path
) -> None:
    store = Store(deploy_settings.database_url)
    registry = Registry(store.engine)
    registry.register("gemma", "v1", str(gguf), params={}, by=ALICE)
    registry.register("gemma", "v2", str(gguf), params={"context_length": 4096}, by=ALICE)
    registry.set_live("gemma", "staging", "v1")
    with running_bot(deploy_settings) as url:
        SignedSender(url, SECRET).slash_command("deploy gemma v2 staging", user_id=ALICE)
        shown = card(standin)
    with running_bot(deploy_settings) as url:  # a restarted bot
        click(SignedSender(url, SECRET), shown, BOB)
        requests = requests_of(deploy_settings)
        wait_until(lambda: requests.history("gemma")[0].state in APPROVED_OR_LATER)
        standin.wait_for("chat.postMessage", lambda c: "is approved" in c.params["text"], 30)


def approved_but_not_resumed(
    bot: SignedSender, standin: SlackStandIn, settings: Settings
) -> tuple[RecordedCall, Requests, DeployRequest]:
    """A request BOB approved whose click died between pending → approved and the resume
    of the paused thread: its card, the requests, the request."""
    bot.slash_command("deploy gemma v2 staging", user_id=ALICE)
    shown = card(standin)
    requests = requests_of(settings)
    (request,) = requests.history("gemma")
    assert requests.decide(request, BOB, "approve")
    assert requests.move(request.id, PENDING, APPROVED)  # type: ignore[arg-type]
    return shown, requests, request


def test_an_approval_whose_click_died_before_the_resume_still_deploys(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings
) -> None:
    """The click's worker died after pending → approved and before the paused thread was
    resumed: the request would hold gemma in staging for good. A later click on the card
    (here another approver's; the dead click's own retry does the same) resumes the thread
    with the stored approval, and the deploy runs once."""
    shown, requests, request = approved_but_not_resumed(bot, standin, deploy_settings)
    click(bot, shown, CAROL)
    wait_until(lambda: requests.get(request.id).state not in (APPROVED,), 60)  # type: ignore[arg-type, union-attr]
    standin.wait_for("chat.postMessage", lambda c: "is approved" in c.params["text"], 30)
    assert requests.get(request.id).executions == 1  # type: ignore[arg-type, union-attr]
    late = ephemerals(standin, CAROL)
    assert late and f"decided by <@{BOB}>" in late[0]


def test_a_click_on_an_expired_card_says_so_and_changes_nothing(
    deploy_settings: Settings, standin: SlackStandIn, gguf: Path
) -> None:
    deploy = deploy_settings.deploy.model_copy(update={"request_ttl": "2s"})
    settings = deploy_settings.model_copy(update={"deploy": deploy})
    registry = Registry(Store(settings.database_url).engine)
    registry.register("gemma", "v1", str(gguf), params={}, by=ALICE)
    registry.register("gemma", "v2", str(gguf), params={"context_length": 4096}, by=ALICE)
    registry.set_live("gemma", "staging", "v1")
    with running_bot(settings) as url:
        sender = SignedSender(url, SECRET)
        sender.slash_command("deploy gemma v2 staging", user_id=ALICE)
        shown = card(standin)
        time.sleep(2.5)
        click(sender, shown, BOB)
        wait_until(lambda: bool(ephemerals(standin, BOB)))
        assert "expired at" in ephemerals(standin, BOB)[0]
        (request,) = requests_of(settings).history("gemma")
        assert request.state == "expired" and request.executions == 0
        drawn = standin.wait_for(
            "chat.update",
            lambda c: c.params.get("ts") == shown.params["ts"] and "expired" in c.params["text"],
            30,
        )
        assert '"actions"' not in json.dumps(drawn.params["blocks"])  # the buttons are gone


def test_a_plan_that_changed_after_its_approval_does_not_run(
    bot: SignedSender, standin: SlackStandIn, deploy_settings: Settings, gguf: Path
) -> None:
    """The approval is of the plan on the card: the weights' bytes changed between the
    approval and the execution (here while the thread was not yet resumed), so the digest
    is not the one approved, and nothing is started."""
    shown, requests, request = approved_but_not_resumed(bot, standin, deploy_settings)
    gguf.write_bytes(b"GGUF" + b"\1" * 4096)  # other weights under the approved path
    click(bot, shown, CAROL)  # resumes the thread: the execution checks the plan first
    wait_until(lambda: requests.get(request.id).state == FAILED, 60)  # type: ignore[arg-type, union-attr]
    failed = requests.get(request.id)
    assert failed is not None and "changed after the approval" in failed.note
    assert "nothing was deployed" in failed.note
    assert not list((deploy_settings.data_dir / "servers").glob("gemma-*.log"))  # none started
