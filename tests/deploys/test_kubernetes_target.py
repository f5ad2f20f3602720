"""The kubernetes deploy target against a local stand-in of the apps/v1 Deployment API
(tests/kubernetes_standin.py), through the real client configured by a kubeconfig file."""

from __future__ import annotations

import copy
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.deploys.targets.base import Started, TargetError
from bot.deploys.targets.kubernetes import (
    JSON_PATCH,
    PREVIOUS,
    SERVED_NAME,
    STRATEGIC_MERGE,
    VERSION,
    KubernetesTarget,
    merge_args,
    vllm_args,
)
from bot.net import free_port
from bot.settings import DeploySettings
from tests.kubernetes_standin import KubernetesStandin

TOKEN = "standin-token-7f3a9c"
NS = "models"
IMAGE = "vllm/vllm-openai:v0.8.5"
OLD_ARGS = [
    "--model=org/summarizer-v2",
    "--served-model-name", "summarizer-v2",
    "--host=0.0.0.0",
    "--port", "8000",
    "--max-model-len", "2048",
    "--dtype", "float16",
    "--enable-prefix-caching",
]  # fmt: skip


def deployment(name: str, version: str | None = "v2") -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    notes = {VERSION: version, SERVED_NAME: f"summarizer-{version}"} if version else {}
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": notes},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": IMAGE,
                            "command": ["vllm", "serve"],
                            "args": list(OLD_ARGS),
                            "env": [{"name": "HF_HOME", "value": "/cache"}],
                            "ports": [{"name": "http", "containerPort": 8000}],
                        },
                        {"name": "metrics-exporter", "image": "exporter:1.2"},
                    ]
                },
            },
        },
    }


def plan(version: str = "v3", env: str = "staging", **params: Any) -> dict[str, Any]:
    return {
        "action": "deploy", "model": "summarizer", "env": env, "version": version,
        "from_version": "v2", "target": "kubernetes", "uri": f"hf://org/summarizer-{version}",
        "sha256": None,
        "params": {"served_name": f"summarizer-{version}", "context_length": 4096,
                   "args": "--dtype half --gpu-memory-utilization 0.85", **params},
    }  # fmt: skip


def write_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "opsbot", "user": {"token": token}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "opsbot"}}],
    }))  # fmt: skip
    return path


@pytest.fixture
def standin() -> Iterator[KubernetesStandin]:
    cluster = KubernetesStandin(token=TOKEN, rollout_s=0.05, progress_deadline_s=0.3)
    cluster.add(deployment("summarizer-staging"))
    cluster.add(deployment("translator-staging", version=None))
    with cluster.serve() as url:
        assert cluster.url == url
        yield cluster


MakeTarget = Callable[..., KubernetesTarget]


@pytest.fixture
def make_target(
    standin: KubernetesStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MakeTarget:
    """A target whose client loads a kubeconfig (KUBECONFIG) naming the stand-in."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a cluster

    def make(server: str | None = None, token: str = TOKEN, **settings: Any) -> KubernetesTarget:
        config = write_kubeconfig(tmp_path / "kubeconfig", server or standin.url, token)
        monkeypatch.setenv("KUBECONFIG", str(config))
        deploy = DeploySettings(kubernetes_namespace=NS, health_timeout="5s", **settings)
        return KubernetesTarget(deploy, poll_interval=0.01)

    return make


@pytest.fixture
def target(make_target: MakeTarget) -> KubernetesTarget:
    return make_target()


def template(standin: KubernetesStandin, name: str = "summarizer-staging") -> dict[str, Any]:
    return copy.deepcopy(standin.get(NS, name)["spec"]["template"])


# -- deploy ----------------------------------------------------------------------------------


def test_start_sends_one_strategic_merge_patch_of_the_container(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin)
    started = target.start(plan(image="vllm/vllm-openai:v0.9.0"))

    [sent] = standin.patches()
    assert sent.content_type == STRATEGIC_MERGE
    assert sent.path == f"/apis/apps/v1/namespaces/{NS}/deployments/summarizer-staging"
    body = copy.deepcopy(sent.body)
    assert json.loads(body["metadata"]["annotations"].pop(PREVIOUS)) == original
    notes = {VERSION: "v3", SERVED_NAME: "summarizer-v3"}
    new_args = [
        "--model=org/summarizer-v3",
        "--served-model-name", "summarizer-v3",
        "--host=0.0.0.0",
        "--port", "8000",
        "--max-model-len", "4096",
        "--dtype", "half",
        "--enable-prefix-caching",
        "--gpu-memory-utilization", "0.85",
    ]  # fmt: skip
    assert body == {
        "metadata": {"annotations": notes},
        "spec": {
            "template": {
                "metadata": {"annotations": notes},
                "spec": {
                    "containers": [
                        {"name": "vllm", "args": new_args, "image": "vllm/vllm-openai:v0.9.0"}
                    ]
                },
            }
        },
    }
    now = standin.get(NS, "summarizer-staging")
    vllm, sidecar = now["spec"]["template"]["spec"]["containers"]
    assert vllm["args"] == new_args and vllm["image"] == "vllm/vllm-openai:v0.9.0"
    assert vllm["env"] == original["spec"]["containers"][0]["env"]  # merged, not replaced
    assert vllm["command"] == ["vllm", "serve"] and vllm["ports"][0]["containerPort"] == 8000
    assert sidecar == original["spec"]["containers"][1]
    assert now["spec"]["template"]["metadata"]["annotations"] == notes
    assert now["metadata"]["generation"] == started.ref["generation"] == 2
    assert started.ref["previous_template"] == original
    assert (started.version, started.served_name) == ("v3", "summarizer-v3")
    assert started.upstream == f"http://summarizer-staging.{NS}.svc:8000/v1"
    assert Started.from_dict(json.loads(json.dumps(started.as_dict()))) == started
    assert target.running(started)


def test_health_waits_for_the_rollout_then_current_reads_the_version(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    started = target.start(plan())
    polled = len(standin.requests)
    target.health(started, timeout=5)

    assert len(standin.requests) - polled >= 3  # it waited: unobserved, old pods, done
    status = standin.get(NS, "summarizer-staging")["status"]
    assert status["observedGeneration"] == 2
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == 2
    live = target.current("summarizer", "staging")
    assert live is not None
    assert (live.version, live.served_name) == ("v3", "summarizer-v3")
    assert live.ref["template"] == template(standin)
    assert live.upstream == target.address("summarizer", "staging")


def test_a_progress_deadline_fails_health_and_abandon_puts_the_old_template_back(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin)
    standin.never_available(image="vllm/vllm-openai:broken")
    started = target.start(plan(image="vllm/vllm-openai:broken"))

    with pytest.raises(TargetError) as failed:
        target.health(started, timeout=5)
    assert "ProgressDeadlineExceeded" in str(failed.value)
    assert "has timed out progressing" in str(failed.value)

    target.abandon(started)
    assert template(standin) == original
    restored = standin.patches()[-1]
    assert restored.content_type == JSON_PATCH
    assert restored.body[0] == {"op": "replace", "path": "/spec/template", "value": original}
    assert standin.get(NS, "summarizer-staging")["metadata"]["annotations"][VERSION] == "v2"
    assert not target.running(started)

    target.abandon(started)  # a second call: nothing to undo
    assert len(standin.patches()) == 2


def test_a_rollout_that_never_finishes_times_out(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    standin.progress_deadline_s = 60
    standin.never_available(version="v3")
    started = target.start(plan())
    with pytest.raises(TargetError, match=r"did not finish in 0.3 s: 2 old replicas are pending"):
        target.health(started, timeout=0.3)


# -- rollback ---------------------------------------------------------------------------------


def test_restore_after_a_failed_verification_rolls_the_old_template_out(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin)
    before = target.current("summarizer", "staging")
    assert before is not None and before.version == "v2"
    started = target.start(plan())
    target.health(started, timeout=5)

    target.restore("summarizer", "staging", before)  # verification failed
    assert template(standin) == original
    now = standin.get(NS, "summarizer-staging")
    assert now["status"]["observedGeneration"] == now["metadata"]["generation"] == 3
    assert now["status"]["replicas"] == now["status"]["availableReplicas"] == 2  # waited
    assert standin.patches()[-1].content_type == JSON_PATCH
    live = target.current("summarizer", "staging")
    assert live is not None and live.version == "v2"

    target.abandon(started)  # after restore: the started version is gone already
    assert len(standin.patches()) == 2


def test_restore_without_before_uses_the_template_start_recorded(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin, "translator-staging")
    assert target.current("translator", "staging") is None  # nothing the bot deployed
    started = target.start({**plan(), "model": "translator"})
    target.health(started, timeout=5)

    target.restore("translator", "staging", None)
    assert template(standin, "translator-staging") == original
    assert target.current("translator", "staging") is None
    assert VERSION not in standin.get(NS, "translator-staging")["metadata"]["annotations"]


def test_restore_without_any_record_says_how_to_roll_back(target: KubernetesTarget) -> None:
    with pytest.raises(TargetError, match="kubectl rollout undo deployment/translator-staging"):
        target.restore("translator", "staging", None)


def test_a_retried_start_keeps_the_template_of_before_the_first_attempt(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin)
    target.start(plan())
    again = target.start(plan())  # the job died before it recorded the first start
    assert again.ref["previous_template"] == original
    target.abandon(again)
    assert template(standin) == original


# -- preflight and errors ---------------------------------------------------------------------


def test_preflight_passes_with_a_dry_run_that_changes_nothing(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    original = template(standin)
    target.preflight(plan())
    dry = [r for r in standin.requests if r.method == "PATCH"]
    assert len(dry) == 1 and dry[0].query["dryRun"] == ["All"]
    assert standin.patches() == [] and template(standin) == original


def test_preflight_of_a_missing_deployment(target: KubernetesTarget) -> None:
    with pytest.raises(TargetError, match=f"summarizer-production: not found in namespace {NS}"):
        target.preflight(plan(env="production"))


def test_preflight_of_a_missing_container(make_target: MakeTarget) -> None:
    target = make_target(kubernetes_container="vllm-server")
    with pytest.raises(TargetError, match=r"no container vllm-server \(its containers: vllm, "):
        target.preflight(plan())


def test_preflight_with_a_wrong_token_says_401_and_never_shows_a_token(
    make_target: MakeTarget,
) -> None:
    target = make_target(token="wrong-token-123")
    with pytest.raises(TargetError) as failed:
        target.preflight(plan())
    text = str(failed.value)
    assert "401" in text and "service account" in text and "get and patch" in text
    assert "wrong-token-123" not in text and TOKEN not in text and "Traceback" not in text


def test_preflight_without_patch_permission(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    standin.rules = {"deployments": {"get"}}
    with pytest.raises(TargetError, match=r"403\).*lacks get/patch.*cannot patch resource"):
        target.preflight(plan())


def test_preflight_refuses_stray_args(target: KubernetesTarget) -> None:
    with pytest.raises(TargetError, match="'half' is not a --flag"):
        target.preflight(plan(args="half --dtype"))


def test_an_unreachable_api_server_is_a_target_error(make_target: MakeTarget) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    target = make_target(server=server)
    with pytest.raises(TargetError, match=f"cannot reach the Kubernetes API at {server}"):
        target.preflight(plan())
    with pytest.raises(TargetError, match="Connection refused"):
        target.current("summarizer", "staging")


def test_no_configuration_fails_at_first_use_not_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    target = KubernetesTarget(DeploySettings())
    assert target.address("a", "b") == "http://a-b.default.svc:8000/v1"
    with pytest.raises(TargetError, match="no Kubernetes API configuration"):
        target.current("a", "b")


# -- vLLM's flags and the stand-in ------------------------------------------------------------


def test_flags_replace_the_positional_model_and_either_spelling() -> None:
    params = {"context_length": 8192, "args": ["--max_num_seqs", "8"]}
    wanted = vllm_args({"model": "m", "version": "v9", "uri": "s3://bucket/m/v9", "params": params})
    args = merge_args(["org/old", "--max_model_len=1024", "--max-num-seqs", "64",
                       "--served-model-name", "a", "b", "--trust-remote-code"], wanted)  # fmt: skip
    assert args == ["s3://bucket/m/v9", "--max_model_len=8192", "--max-num-seqs", "8",
                    "--served-model-name", "m-v9", "--trust-remote-code"]  # fmt: skip


def test_the_standin_serves_status_merge_patches_and_refuses_other_types(
    target: KubernetesTarget, standin: KubernetesStandin
) -> None:
    api = target.api
    api.patch_namespaced_deployment(
        "summarizer-staging", NS, {"spec": {"replicas": 3}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    read = api.read_namespaced_deployment_status("summarizer-staging", NS)
    assert read.spec is not None and read.spec.replicas == 3
    assert read.status is not None and read.status.observed_generation == 2
    assert standin.requests[-1].path.endswith("/summarizer-staging/status")

    url = f"{standin.url}/apis/apps/v1/namespaces/{NS}/deployments/summarizer-staging"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}
    request = urllib.request.Request(url, b"{}", headers, method="PATCH")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 415
    assert json.loads(refused.value.read())["reason"] == "UnsupportedMediaType"


# -- deploy/kubernetes-target.md --------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes-target.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.M | re.S)


def test_the_documented_setup_deploys_and_rolls_back_with_only_its_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [d for block in doc_blocks("yaml") for d in yaml.safe_load_all(block) if d]
    by_kind = {d["kind"]: d for d in docs if "kind" in d and "namespace" in d["metadata"]}
    env = dict(line.split("=", 1) for line in doc_blocks("bash")[0].splitlines())
    assert env.pop("OPSBOT_DEPLOY_TARGET") == "kubernetes"
    settings = DeploySettings(**{k.removeprefix("OPSBOT_DEPLOY_").lower(): v
                                 for k, v in env.items()})  # fmt: skip
    try:
        import kubernetes_validate
    except ImportError:  # the dev extra
        pass
    else:
        for kind in ("Deployment", "Service", "Role", "RoleBinding"):
            kubernetes_validate.validate(by_kind[kind], "1.30.0", strict=True)

    [rule] = by_kind["Role"]["rules"]
    assert rule["apiGroups"] == ["apps"]
    cluster = KubernetesStandin(
        token=TOKEN, rules={r: set(rule["verbs"]) for r in rule["resources"]}
    )
    example = cluster.add(by_kind["Deployment"])
    assert settings.kubernetes_namespace == example["metadata"]["namespace"]
    service = by_kind["Service"]["metadata"]["name"]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with cluster.serve() as url:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", url, TOKEN)))
        target = KubernetesTarget(settings, poll_interval=0.01)
        version = plan(image="vllm/vllm-openai:v0.33.1")
        target.preflight(version)
        before = target.current("summarizer", "staging")
        assert before is not None and before.version == "v2"
        started = target.start(version)
        target.health(started, timeout=5)
        target.restore("summarizer", "staging", before)
    assert cluster.get(NS, "summarizer-staging")["spec"]["template"] == example["spec"]["template"]
    assert started.upstream == f"http://{service}.{NS}.svc:8000/v1"
