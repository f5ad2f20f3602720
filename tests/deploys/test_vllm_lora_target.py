"""The vllm-lora target against a stand-in vLLM (``tests/vllm_standin.py``): preflight,
a deploy v1 → v2 through start, health, switch and retire, a load that fails, a restore
after a failed verification, a retried start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

import bot.deploys.serving  # noqa: F401 (registers the model_serving table)
from bot.db import make_engine
from bot.deploys.serving import Serving, stable_address
from bot.deploys.targets.base import Started, TargetError
from bot.deploys.targets.vllm_lora import PROBE_NAME, VllmLoraTarget, lora_path
from bot.net import free_port
from bot.settings import DeploySettings, Settings
from tests.vllm_standin import BASE_MODEL, VllmStandIn

MODEL, ENV = "summarizer", "staging"


def plan(version: str, uri: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "action": "deploy",
        "model": MODEL,
        "env": ENV,
        "version": version,
        "from_version": None,
        "target": "vllm-lora",
        "uri": uri or f"/adapters/{MODEL}-{version}",
        "sha256": None,
        "params": {"served_name": f"{MODEL}-{version}"},
        **extra,
    }


@pytest.fixture
def standin() -> Iterator[VllmStandIn]:
    server = VllmStandIn()
    with server.serve():
        yield server


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'serving.sqlite'}")
    SQLModel.metadata.create_all(engine)
    return engine


def make_target(engine: Engine, url: str | None) -> VllmLoraTarget:
    settings = Settings(data_dir=Path("data"), deploy=DeploySettings(vllm_url=url))
    target = VllmLoraTarget(settings, Serving(engine), client=httpx.Client(timeout=5), poll=0.05)
    target.drain_s = 0.0
    return target


@pytest.fixture
def target(engine: Engine, standin: VllmStandIn) -> VllmLoraTarget:
    return make_target(engine, standin.url)


def deploy(target: VllmLoraTarget, version: str) -> Started:
    """What an execution does when the verification passes."""
    before = target.current(MODEL, ENV)
    target.preflight(plan(version))
    started = target.start(plan(version))
    target.health(started, timeout=2)
    target.switch(MODEL, ENV, started)
    target.retire(MODEL, ENV, before)
    return started


def served(target: VllmLoraTarget) -> str | None:
    live = target.current(MODEL, ENV)
    return live.served_name if live else None


# -- preflight ------------------------------------------------------------------------------


def test_preflight_refuses_a_vllm_without_runtime_lora_updating(engine: Engine) -> None:
    standin = VllmStandIn(runtime_lora=False)
    with (
        standin.serve() as url,
        pytest.raises(TargetError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") as err,
    ):
        make_target(engine, url).preflight(plan("v1"))
    assert url in str(err.value)
    assert standin.calls("POST", "/v1/load_lora_adapter") == []  # the probe loads nothing


def test_preflight_passes_and_changes_nothing(target: VllmLoraTarget, standin: VllmStandIn) -> None:
    standin.adapters["other-team-adapter"] = "/adapters/other"
    target.preflight(plan("v1"))
    assert standin.adapters == {"other-team-adapter": "/adapters/other"}
    assert standin.unloaded() == [PROBE_NAME]  # vLLM answered 404 "cannot be found"


def test_preflight_tells_a_vllm_answer_from_a_missing_route_in_the_legacy_shape(
    engine: Engine,
) -> None:
    standin = VllmStandIn(legacy_errors=True)
    with standin.serve() as url:
        make_target(engine, url).preflight(plan("v1"))


def test_preflight_on_a_down_server_names_its_url(engine: Engine) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TargetError, match="does not answer") as err:
        make_target(engine, url).preflight(plan("v1"))
    assert url in str(err.value)


def test_preflight_on_a_dead_engine_says_it_is_unhealthy(
    target: VllmLoraTarget, standin: VllmStandIn
) -> None:
    standin.healthy = False
    with pytest.raises(TargetError, match="unhealthy: /health answered 503") as err:
        target.preflight(plan("v1"))
    assert standin.url in str(err.value)


def test_preflight_without_a_vllm_url_names_the_setting(engine: Engine) -> None:
    with pytest.raises(TargetError, match="OPSBOT_DEPLOY_VLLM_URL"):
        make_target(engine, None).preflight(plan("v1"))


# -- a deploy -------------------------------------------------------------------------------


def test_a_deploy_v1_to_v2_switches_to_v2s_adapter_and_unloads_v1s(
    target: VllmLoraTarget, standin: VllmStandIn, engine: Engine
) -> None:
    v1 = deploy(target, "v1")
    assert v1.upstream == f"{standin.url}/v1"
    assert served(target) == "summarizer-v1"

    v2 = deploy(target, "v2")

    live = Serving(engine).get(MODEL, ENV)
    assert live is not None
    assert (live.version, live.served_name, live.upstream) == ("v2", "summarizer-v2", v2.upstream)
    assert standin.adapters == {"summarizer-v2": "/adapters/summarizer-v2"}
    assert BASE_MODEL not in standin.unloaded()
    assert "summarizer-v1" in standin.unloaded()
    models = httpx.get(f"{standin.url}/v1/models").json()["data"]
    assert {m["id"]: m["parent"] for m in models} == {
        BASE_MODEL: None,
        "summarizer-v2": BASE_MODEL,
    }
    # the health check asked the adapter itself for one token
    asked = [r.body for r in standin.calls("POST", "/v1/completions")]
    assert {"model": "summarizer-v2", "prompt": "Hello", "max_tokens": 1} in asked
    assert target.address(MODEL, ENV) == stable_address(target.settings, MODEL, ENV)


def test_a_redeploy_of_the_live_adapter_unloads_nothing(
    target: VllmLoraTarget, standin: VllmStandIn
) -> None:
    deploy(target, "v1")
    before = target.current(MODEL, ENV)
    target.retire(MODEL, ENV, before)  # the same adapter still serves
    assert standin.adapters == {"summarizer-v1": "/adapters/summarizer-v1"}


def test_retire_never_unloads_the_base_model(target: VllmLoraTarget, standin: VllmStandIn) -> None:
    base = Started("v0", BASE_MODEL, f"{standin.url}/v1")
    target.switch(MODEL, ENV, base)
    deploy(target, "v1")
    assert BASE_MODEL not in standin.unloaded()
    assert served(target) == "summarizer-v1"


def test_retire_leaves_a_version_served_elsewhere_alone(
    target: VllmLoraTarget, standin: VllmStandIn
) -> None:
    standin.adapters["summarizer-v1"] = "/adapters/summarizer-v1"
    elsewhere = Started("v1", "summarizer-v1", "http://127.0.0.1:9/v1", {"pid": 4242})
    target.switch(MODEL, ENV, elsewhere)
    deploy(target, "v2")
    assert "summarizer-v1" in standin.adapters  # it was another server's to stop


def test_a_hugging_face_uri_loads_the_repo_id(target: VllmLoraTarget, standin: VllmStandIn) -> None:
    target.start(plan("v1", uri="hf://acme/summarizer-lora"))
    assert standin.adapters == {"summarizer-v1": "acme/summarizer-lora"}
    assert lora_path(plan("v1", uri="file:///srv/a")) == "/srv/a"


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "legacy", "says"),
    [
        (404, False, "No adapter found for /adapters/summarizer-v2"),
        (400, False, "LoRA rank 64 is greater than max_lora_rank 16"),
        (404, True, "No adapter found for /adapters/summarizer-v2"),
    ],
)
def test_a_failed_load_says_vllms_message_and_switches_nothing(
    engine: Engine, status: int, legacy: bool, says: str
) -> None:
    standin = VllmStandIn(legacy_errors=legacy)
    with standin.serve() as url:
        target = make_target(engine, url)
        deploy(target, "v1")
        standin.break_adapter("summarizer-v2", status)
        with pytest.raises(TargetError, match=f"\\({status}\\)") as err:
            target.start(plan("v2"))
    assert says in str(err.value)
    assert "summarizer-v2" in str(err.value)
    assert served(target) == "summarizer-v1"
    assert standin.adapters == {"summarizer-v1": "/adapters/summarizer-v1"}


def test_restore_and_abandon_after_a_failed_verification_leave_v1_serving(
    target: VllmLoraTarget, standin: VllmStandIn, engine: Engine
) -> None:
    deploy(target, "v1")
    before = target.current(MODEL, ENV)
    started = target.start(plan("v2"))
    target.health(started, timeout=2)
    target.switch(MODEL, ENV, started)
    assert served(target) == "summarizer-v2"

    # ... the verification fails:
    target.restore(MODEL, ENV, before)
    target.abandon(started)
    target.abandon(started)  # a retried job abandons again: no error

    live = Serving(engine).get(MODEL, ENV)
    assert live is not None and (live.version, live.served_name) == ("v1", "summarizer-v1")
    assert standin.adapters == {"summarizer-v1": "/adapters/summarizer-v1"}
    assert not target.running(started)
    assert BASE_MODEL not in standin.unloaded()


def test_health_fails_in_time_with_the_reason(target: VllmLoraTarget, standin: VllmStandIn) -> None:
    started = target.start(plan("v1"))
    standin.mute.add("summarizer-v1")
    began = time.monotonic()
    with pytest.raises(TargetError, match="not healthy after 0.3 s") as err:
        target.health(started, timeout=0.3)
    assert time.monotonic() - began < 2
    assert "a completion answered 500" in str(err.value)


def test_health_fails_for_an_adapter_vllm_does_not_list(target: VllmLoraTarget) -> None:
    ghost = Started("v9", "summarizer-v9", target.upstream)
    with pytest.raises(TargetError, match="/v1/models does not list it"):
        target.health(ghost, timeout=0.2)


def test_a_retried_start_after_the_adapter_was_loaded_is_not_an_error(
    target: VllmLoraTarget, standin: VllmStandIn
) -> None:
    first = target.start(plan("v2"))
    again = target.start(plan("v2"))  # the bot died after loading; the job runs again
    assert again == first
    assert target.running(again)
    assert len(standin.calls("POST", "/v1/load_lora_adapter")) == 2
    assert standin.adapters == {"summarizer-v2": "/adapters/summarizer-v2"}


def test_a_start_under_a_name_loaded_from_another_path_is_refused(
    target: VllmLoraTarget, standin: VllmStandIn
) -> None:
    standin.adapters["summarizer-v2"] = "/adapters/someone-elses"
    with pytest.raises(TargetError, match="already loaded .* from /adapters/someone-elses"):
        target.start(plan("v2"))


def test_a_server_that_went_away_is_a_target_error(engine: Engine) -> None:
    target = make_target(engine, f"http://127.0.0.1:{free_port()}")
    started = Started("v1", "summarizer-v1", target.upstream)
    for step in (lambda: target.start(plan("v1")), lambda: target.running(started),
                 lambda: target.abandon(started)):  # fmt: skip
        with pytest.raises(TargetError, match="did not answer"):
            step()
