"""Deploy requests on SQLite and PostgreSQL: one active request per model and environment,
compare-and-set moves, approvals bound to the plan, expiry; the registry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.deploys.requests import (
    APPROVED,
    EXPIRED,
    PENDING,
    RUNNING,
    BusyError,
    DeployRequest,
    Requests,
    plan_hash,
)
from bot.store import Store
from tools.base import ToolError
from tools.deploy.registry import Registry, parse_params
from tools.deploy.tool import deploy_intent, rollback_intent


def request(**kw: object) -> DeployRequest:
    base = {"action": "deploy", "model": "gemma", "env": "staging", "version": "v2",
            "from_version": "v1", "plan": {"version": "v2"}, "plan_hash": "",
            "requested_by": "U1"}  # fmt: skip
    return DeployRequest(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def requests(db_url: str) -> Requests:
    return Requests(Store(db_url).engine)


def test_one_active_request_per_model_and_environment(requests: Requests) -> None:
    first = requests.create(request(), ttl=timedelta(hours=1))
    assert first.plan_hash == plan_hash({"version": "v2"})
    with pytest.raises(BusyError, match=f"request #{first.id}"):
        requests.create(request(), ttl=timedelta(hours=1))
    other_env = requests.create(request(env="production"), ttl=timedelta(hours=1))
    assert other_env.id != first.id


def test_moves_are_compare_and_set_even_when_racing(db_url: str) -> None:
    made = Requests(Store(db_url).engine).create(request(), ttl=timedelta(hours=1))
    assert made.id is not None
    replicas = [Requests(Store(db_url).engine) for _ in range(4)]
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda r=r: wins.append(r.move(made.id, PENDING, APPROVED)))
               for r in replicas for _ in range(5)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    starts = [r.start_execution(made.id) for r in replicas]
    assert starts.count(True) == 1
    final = replicas[0].get(made.id)
    assert final is not None and final.state == RUNNING and final.executions == 1
    assert final.decided_at is not None


def test_approvals_count_once_per_person_and_only_for_the_current_plan(requests: Requests) -> None:
    made = requests.create(request(), ttl=timedelta(hours=1))
    assert made.id is not None
    assert requests.decide(made, "U2", "approve") and not requests.decide(made, "U2", "approve")
    assert [a.user for a in requests.approvals(made)] == ["U2"]
    assert requests.replan(made.id, {"version": "v2", "from_version": "v1-hotfix"})
    assert not requests.replan(made.id, {"version": "v2", "from_version": "v1-hotfix"})
    fresh = requests.get(made.id)
    assert fresh is not None and requests.approvals(fresh) == []
    assert requests.decide(fresh, "U2", "approve")  # a new plan takes a new approval


def test_pending_requests_expire(requests: Requests) -> None:
    made = requests.create(request(), ttl=timedelta(seconds=0.2))
    time.sleep(0.3)
    assert requests.expire_due() == [made.id]
    expired = requests.get(made.id)  # type: ignore[arg-type]
    assert expired is not None and expired.state == EXPIRED and expired.finished_at is not None
    requests.create(request(), ttl=timedelta(hours=1))  # the model and env are free again


def test_the_registry_records_digests_params_and_what_is_live(db_url: str, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" * 100)
    registry = Registry(Store(db_url).engine)
    params = parse_params(["context_length=2048"])
    local = registry.register("gemma", "v1", str(gguf), params=params, by="U1")
    assert local.sha256 is not None and len(local.sha256) == 64
    remote = registry.register("gemma", "v2", "hf://org/gemma", params={}, by="U1")
    assert remote.sha256 is None
    with pytest.raises(ToolError, match="registered already"):
        registry.register("gemma", "v1", "hf://x", params={}, by="U1")
    with pytest.raises(ToolError, match="not a file here"):
        registry.register("gemma", "v3", str(tmp_path / "missing.gguf"), params={}, by="U1")
    with pytest.raises(ToolError, match="no version 'v9'; known: v1, v2"):
        registry.get("gemma", "v9")
    with pytest.raises(ToolError, match="no model 'llama'"):
        registry.get("llama", "v1")
    assert registry.live_version("gemma", "staging") is None
    registry.set_live("gemma", "staging", "v2")
    registry.set_live("gemma", "staging", "v1")
    assert registry.live_version("gemma", "staging") == "v1"


def test_serving_parameters_are_typed_and_checked() -> None:
    assert parse_params(["context_length=4096", "served-name=summ"]) == {
        "context_length": 4096, "served_name": "summ"}  # fmt: skip
    with pytest.raises(ToolError, match="whole number"):
        parse_params(["context_length=big"])
    with pytest.raises(ToolError, match="not a serving parameter"):
        parse_params(["colour=blue"])


@pytest.mark.parametrize(
    ("words", "deploy", "rollback"),
    [
        ("roll the summarizer to v3 in staging",
         {"model": "summarizer", "version": "v3", "env": "staging"}, None),
        ("deploy gemma 2 to prod", {"model": "gemma", "version": "2", "env": "production"}, None),
        ("roll back the summarizer in prod", None, {"model": "summarizer", "env": "production"}),
        ("rollback gemma", None, {"model": "gemma"}),
        ("what should I check when pods crash-loop?", None, None),
        ("how do I roll back a deployment?", None, None),
    ],
)  # fmt: skip
def test_deploys_in_words_are_understood_without_a_model(
    words: str, deploy: dict[str, str] | None, rollback: dict[str, str] | None
) -> None:
    assert deploy_intent(words) == deploy
    assert rollback_intent(words) == rollback


def test_requests_made_at_the_same_moment_leave_one_active(db_url: str) -> None:
    """Replicas asking at once: the database's partial unique index keeps one active request
    per model and environment, whatever the check before the insert saw."""
    replicas = [Requests(Store(db_url).engine) for _ in range(6)]
    made: list[int] = []
    busy: list[str] = []
    start = threading.Barrier(len(replicas))

    def ask(r: Requests) -> None:
        start.wait()
        try:
            made.append(r.create(request(), ttl=timedelta(hours=1)).id or 0)
        except BusyError as exc:
            busy.append(str(exc))

    threads = [threading.Thread(target=ask, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(busy) == len(replicas) - 1
    assert all(f"request #{made[0]}" in b for b in busy)
    assert replicas[0].move(made[0], PENDING, "rejected")  # no longer active: a new one may
    assert replicas[1].create(request(), ttl=timedelta(hours=1)).id != made[0]
