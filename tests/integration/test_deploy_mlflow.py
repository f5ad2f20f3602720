"""The MLflow Model Registry against a real ``mlflow server``: the packaged Gemma GGUF logged
as a run artifact and registered as two versions; deploys through the signed Slack path
move the environment's alias, a rollback moves it back, and every move is in the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.deploys.requests import FAILED, ROLLED_BACK, SUCCEEDED, Requests
from bot.deploys.targets.local import stop_all
from bot.settings import Settings
from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from tests.integration.conftest import SECRET, running_bot
from tests.integration.processes import wait_until
from tests.integration.test_deploy_approvals import ALICE, BOB, card, click
from tests.integration.test_deploy_local import served_by
from tests.mlflow_server import mlflow_command, mlflow_server
from tools.base import ToolError

pytestmark = pytest.mark.integration
if mlflow_command() is None:
    pytest.skip("LOUD SKIP: mlflow is not installed (the mlflow extra)", allow_module_level=True)

from tools.deploy.mlflow_registry import MlflowRegistry  # noqa: E402


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture
def registry(mlflow_url: str, tmp_path: Path) -> MlflowRegistry:
    return MlflowRegistry(mlflow_url, Store(f"sqlite:///{tmp_path / 'store.sqlite'}").engine)


def test_versions_aliases_and_their_history(registry: MlflowRegistry, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    local = registry.register("tiny", "v1", str(weights), by=ALICE,
                              params={"served_name": "tiny-v1", "context_length": 256})  # fmt: skip
    remote = registry.register("tiny", "v2", "hf://org/tiny-v2", by=ALICE, params={})
    assert local.uri.startswith("runs:/") and local.uri.endswith("/tiny.gguf")
    assert local.sha256 and len(local.sha256) == 64 and remote.uri == "hf://org/tiny-v2"
    assert registry.get("tiny", "v1").params == {"served_name": "tiny-v1", "context_length": 256}
    assert [v.version for v in registry.versions("tiny")] == ["v1", "v2"]
    with pytest.raises(ToolError, match="registered already"):
        registry.register("tiny", "v1", "hf://org/again", by=ALICE, params={})
    with pytest.raises(ToolError, match="known: v1, v2"):
        registry.get("tiny", "v9")

    assert registry.live_version("tiny", "staging") is None
    registry.set_live("tiny", "staging", "v1", by=BOB, why="deploy #1")
    registry.set_live("tiny", "staging", "v2", by=BOB, why="deploy #2")
    registry.set_live("tiny", "staging", "v1", by=BOB, why="rollback #3")
    assert registry.live_version("tiny", "staging") == "v1"
    raw = registry.client.get_model_version_by_alias("tiny", "staging")
    assert raw.version == "1"  # MLflow's own alias, read back with its client
    moves = [(m.from_version, m.to_version, m.why) for m in registry.alias_history("tiny")]
    assert moves == [(None, "v1", "deploy #1"), ("v1", "v2", "deploy #2"),
                     ("v2", "v1", "rollback #3")]  # fmt: skip
    assert [(r.env, r.version) for r in registry.live("tiny")] == [("staging", "v1")]


def test_a_server_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    down = MlflowRegistry("http://127.0.0.1:9", Store(f"sqlite:///{tmp_path / 's'}").engine)
    with pytest.raises(ToolError, match="MLflow"):
        down.versions("tiny")


@pytest.fixture
def mlflow_bot(
    bot_settings: Settings, gemma: Path, mlflow_url: str
) -> Iterator[tuple[SignedSender, str, Settings, MlflowRegistry]]:
    deploy = bot_settings.deploy.model_copy(update={"approvers": {"staging": [BOB]}})
    mlflow = bot_settings.mlflow.model_copy(update={"tracking_uri": mlflow_url})
    settings = bot_settings.model_copy(update={"deploy": deploy, "mlflow": mlflow})
    registry = MlflowRegistry(mlflow_url, Store(settings.database_url).engine)
    for version, ctx in (("v1", 512), ("v2", 1024)):
        params = {"served_name": f"gemma-ml-{version}", "context_length": ctx}
        registry.register("gemma-ml", version, str(gemma), by=ALICE, params=params)
    try:
        with running_bot(settings) as url:
            yield SignedSender(url, SECRET), url.removesuffix("/slack/events"), settings, registry
    finally:
        stop_all(settings.data_dir)


def test_deploys_move_the_alias_and_a_rollback_moves_it_back(
    mlflow_bot: tuple[SignedSender, str, Settings, MlflowRegistry], standin: SlackStandIn
) -> None:
    sender, base, settings, registry = mlflow_bot
    requests = Requests(Store(settings.database_url).engine)
    done = (SUCCEEDED, FAILED, ROLLED_BACK)

    def run(command: str) -> None:
        standin.clear()
        sender.slash_command(command, user_id=ALICE)
        click(sender, card(standin), BOB)
        wait_until(lambda: requests.history("gemma-ml")[-1].state in done, timeout=120)
        last = requests.history("gemma-ml")[-1]
        assert last.state == SUCCEEDED, last.note

    run("deploy gemma-ml v1 staging")
    assert served_by(base, "gemma-ml") == "gemma-ml-v1"
    assert registry.client.get_model_version_by_alias("gemma-ml", "staging").version == "1"
    # the weights came from MLflow's artifact store, not from the registered path
    fetched = list((settings.data_dir / "artifacts" / "gemma-ml" / "v1").rglob("*.gguf"))
    assert len(fetched) == 1

    run("deploy gemma-ml v2 staging")
    assert served_by(base, "gemma-ml") == "gemma-ml-v2"
    assert registry.client.get_model_version_by_alias("gemma-ml", "staging").version == "2"

    run("rollback gemma-ml staging")
    assert served_by(base, "gemma-ml") == "gemma-ml-v1"
    assert registry.client.get_model_version_by_alias("gemma-ml", "staging").version == "1"
    moves = [(m.from_version, m.to_version, m.by) for m in registry.alias_history("gemma-ml")]
    assert moves == [(None, "v1", ALICE), ("v1", "v2", ALICE), ("v2", "v1", ALICE)]
