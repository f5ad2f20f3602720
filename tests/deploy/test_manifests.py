"""The Kubernetes manifests in deploy/k8s: valid against Kubernetes' schemas, wired together.

The kustomization's `resources:` are resolved here (no cluster, and kustomize is optional):
each built-in kind is validated with kubernetes-validate's strict schemas, the
ServiceMonitor (a CRD) by hand, then the references between them are followed: probes to
declared ports, selectors to pod labels, the ConfigMap and Secret keys to README.md's
settings table, the vLLM flags to deploy/vllm.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is in the dev extra (make install-dev)"
)
from kubernetes_validate.utils import all_versions  # noqa: E402

from bot.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
README = ROOT / "README.md"
VLLM_DOC = ROOT / "deploy" / "vllm.md"
RULES = ROOT / "deploy" / "prometheus" / "opsbot-rules.yml"

Doc = dict[str, Any]

#: The oldest Kubernetes minor the manifests are meant for, and the newest the package ships.
OLDEST_SUPPORTED = "1.30"
EXAMPLES = ("secret.example.yaml", "postgres-cnpg.example.yaml")
PATCHES = ("database-url-from-cnpg.patch.yaml",)


def load_all(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization() -> Doc:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resources() -> list[Doc]:
    """Every document of the kustomization's resources, in order."""
    docs: list[Doc] = []
    for entry in kustomization()["resources"]:
        path = K8S / entry
        assert path.is_file(), f"kustomization resource {entry} is not a file in deploy/k8s"
        docs.extend(load_all(path))
    return docs


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def built_in(doc: Doc) -> bool:
    """A kind Kubernetes itself defines: core (v1) or a group without dots or in *.k8s.io."""
    group = doc["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def validation_versions() -> list[str]:
    shipped = sorted({v.rsplit(".", 1)[0] for v in all_versions()}, key=_minor)
    oldest = next((v for v in shipped if _minor(v) >= _minor(OLDEST_SUPPORTED)), shipped[-1])
    return sorted({oldest, kubernetes_validate.latest_version().rsplit(".", 1)[0]}, key=_minor)


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2])


def documented_settings() -> set[str]:
    """Variable names in README.md's settings table (read now, so it never drifts)."""
    text = README.read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(OPSBOT_[A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def bot(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", "opsbot")


def pod_spec(deployment: Doc) -> Doc:
    return deployment["spec"]["template"]["spec"]


def main_container(deployment: Doc, name: str) -> Doc:
    return next(c for c in pod_spec(deployment)["containers"] if c["name"] == name)


def port_of(container: Doc, port: int | str) -> int:
    """The container port a probe or Service names (by name or number); it must be declared."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    raise AssertionError(f"port {port!r} is not declared by container {container['name']}")


# --- what is in the kustomization --------------------------------------------------------


def test_every_file_is_a_resource_an_example_or_a_patch() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed | set(EXAMPLES) | set(PATCHES)
    assert not listed & set(EXAMPLES + PATCHES), "examples and patches stay out of the default"


def test_resources_are_namespace_agnostic_and_carry_no_secret() -> None:
    docs = resources()
    assert "namespace" not in kustomization()
    for doc in docs:
        assert "namespace" not in doc["metadata"], f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["kind"] != "Secret", "Secrets are created by the operator of the cluster"


@pytest.mark.parametrize("version", validation_versions())
def test_built_in_kinds_validate_against_kubernetes_schemas(version: str) -> None:
    docs = resources() + [d for name in EXAMPLES for d in load_all(K8S / name) if built_in(d)]
    checked = set()
    for doc in docs:
        if built_in(doc):
            kubernetes_validate.validate(doc, version, strict=True)
            checked.add(doc["kind"])
    expected = {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "ServiceAccount"}
    assert checked >= expected | {"PersistentVolumeClaim", "Secret"}


def test_kubectl_kustomize_builds_the_same_resources_when_available() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed; the resources were resolved by the test instead")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    docs = [d for d in yaml.safe_load_all(built.stdout) if d]
    ids = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert ids == sorted((d["kind"], d["metadata"]["name"]) for d in resources())
    image = main_container(bot(docs), "opsbot")["image"]
    wanted = kustomization()["images"][0]
    assert image == f"{wanted['newName']}:{wanted['newTag']}"


# --- the bot's Deployment ----------------------------------------------------------------


def test_bot_runs_two_replicas_with_probes_on_its_declared_port() -> None:
    deployment = bot(resources())
    assert deployment["spec"]["replicas"] >= 2
    container = main_container(deployment, "opsbot")
    assert container["ports"][0] == {"name": "http", "containerPort": 3000, "protocol": "TCP"}
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/livez"
    assert probes["readinessProbe"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/livez"
    # Long enough to load the embedding model, short enough to notice a hung start.
    assert 60 <= startup["periodSeconds"] * startup["failureThreshold"] <= 600
    for probe in (*probes.values(), startup["httpGet"]):
        assert port_of(container, probe["port"]) == 3000


def test_bot_is_locked_down_with_writable_data_and_tmp_only() -> None:
    spec = pod_spec(bot(resources()))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert set(mounts) == {"/data", "/tmp"}, container["name"]
        assert all("emptyDir" in volumes[name] for name in mounts.values())
        resources_ = container["resources"]
        assert {"cpu", "memory"} <= set(resources_["requests"]), container["name"]
        assert "memory" in resources_["limits"], container["name"]


def test_bot_takes_its_settings_from_the_configmap_and_the_secret() -> None:
    docs = resources()
    spec = pod_spec(bot(docs))
    config = one(docs, "ConfigMap", "opsbot-config")
    for container in spec["containers"] + spec.get("initContainers", []):
        sources = container["envFrom"]
        assert {"configMapRef": {"name": "opsbot-config"}} in sources
        assert {"secretRef": {"name": "opsbot-secrets"}} in sources
    container = main_container(bot(docs), "opsbot")
    data_mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data")
    assert config["data"]["OPSBOT_DATA_DIR"] == data_mount
    assert int(config["data"]["OPSBOT_PORT"]) == port_of(container, "http")


def test_replicas_spread_across_nodes() -> None:
    deployment = bot(resources())
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    spec = pod_spec(deployment)
    by_node = [
        c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert by_node and all(c["maxSkew"] == 1 for c in by_node)
    assert all(selector_matches(c["labelSelector"]["matchLabels"], labels) for c in by_node)
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    term = anti[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selector_matches(term["labelSelector"]["matchLabels"], labels)


def test_selectors_of_the_pdb_and_service_match_the_bot_pods() -> None:
    docs = resources()
    deployment = bot(docs)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(deployment["spec"]["selector"]["matchLabels"], labels)
    pdb = one(docs, "PodDisruptionBudget", "opsbot")
    assert selector_matches(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    service = one(docs, "Service", "opsbot")
    assert selector_matches(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and port["name"] == "http"
    port_of(main_container(deployment, "opsbot"), port["targetPort"])


def test_servicemonitor_scrapes_metrics_on_the_service_http_port() -> None:
    docs = resources()
    monitor = one(docs, "ServiceMonitor", "opsbot")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = one(docs, "Service", "opsbot")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector_matches(selector, service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    endpoints = monitor["spec"]["endpoints"]
    assert endpoints, "at least one endpoint"
    for endpoint in endpoints:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
    # prometheus-operator's job label is the Service's name unless jobLabel says otherwise;
    # the alert rules select that job.
    assert "jobLabel" not in monitor["spec"]
    assert f'up{{job="{service["metadata"]["name"]}"}}' in RULES.read_text()


# --- settings: ConfigMap and Secret keys are real, documented settings ------------------


def test_configmap_holds_only_documented_opsbot_settings() -> None:
    config = one(resources(), "ConfigMap", "opsbot-config")
    documented = documented_settings()
    assert len(documented) > 20, "the README settings table was found"
    for key, value in config["data"].items():
        assert key.startswith("OPSBOT_"), key
        assert key in documented, f"{key} is not in README.md's settings table"
        assert isinstance(value, str), f"{key}: ConfigMap values are strings"
    secret_like = {"TOKEN", "SECRET", "PASSWORD", "API_KEY", "DATABASE_URL"}
    assert not [k for k in config["data"] if any(s in k for s in secret_like)]


def secret_example(name: str) -> Doc:
    return one(load_all(K8S / "secret.example.yaml"), "Secret", name)


def test_secret_example_keys_are_documented_and_hold_no_values() -> None:
    secret = secret_example("opsbot-secrets")
    documented = documented_settings()
    keys = set(secret["stringData"])
    assert {"OPSBOT_SLACK_BOT_TOKEN", "OPSBOT_SLACK_SIGNING_SECRET", "OPSBOT_DATABASE_URL"} <= keys
    assert keys <= documented, keys - documented
    assert all(value == "" for value in secret["stringData"].values()), "no secret committed"
    vllm = secret_example("vllm")
    assert all(value == "" for value in vllm["stringData"].values())


@pytest.fixture
def pod_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The bot's settings as a pod sees them: the ConfigMap plus the Secret's keys."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("OPSBOT_"):
            monkeypatch.delenv(key)
    for key, value in one(resources(), "ConfigMap", "opsbot-config")["data"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OPSBOT_SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("OPSBOT_SLACK_SIGNING_SECRET", "test-secret")
    # The URL form CloudNativePG's app secret (key `uri`) holds.
    monkeypatch.setenv("OPSBOT_DATABASE_URL", "postgresql://opsbot:pw@opsbot-db-rw:5432/opsbot")
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_load_from_the_configmap_and_secret(pod_settings: Settings) -> None:
    """The ConfigMap's values are valid settings for the bot's own settings class."""
    config = one(resources(), "ConfigMap", "opsbot-config")
    settings = pod_settings
    assert settings.port == int(config["data"]["OPSBOT_PORT"])
    assert str(settings.data_dir) == config["data"]["OPSBOT_DATA_DIR"]
    assert settings.llm.url is not None and settings.llm.url.startswith("http://vllm:")
    assert settings.database_url.startswith("postgresql")


def test_grace_period_lets_running_jobs_finish(pod_settings: Settings) -> None:
    """SIGTERM comes after preStop; the workers then get their shutdown grace."""
    spec = pod_spec(bot(resources()))
    pre_stop = main_container(bot(resources()), "opsbot")["lifecycle"]["preStop"]
    sleep = float(pre_stop["exec"]["command"][-1])
    grace = pod_settings.workers.shutdown_grace
    assert spec["terminationGracePeriodSeconds"] >= sleep + grace + 5


def test_secret_references_point_at_the_example_keys() -> None:
    docs = resources()
    vllm = one(docs, "Deployment", "vllm")
    keys = set(secret_example("vllm")["stringData"])
    for env in main_container(vllm, "vllm")["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "vllm" and ref["key"] in keys


# --- vLLM ---------------------------------------------------------------------------------


def vllm_args(deployment: Doc) -> dict[str, str | None]:
    parsed: dict[str, str | None] = {}
    for arg in main_container(deployment, "vllm")["args"]:
        name, sep, value = arg.partition("=")
        parsed[name] = value if sep else None
    return parsed


def parsers_in_vllm_doc() -> dict[str, str]:
    """Model id -> --tool-call-parser, from deploy/vllm.md's model table."""
    rows = re.findall(r"^\| `([^`]+/[^`]+)`[^|]*\| `([a-z0-9_]+)` \|", VLLM_DOC.read_text(), re.M)
    return dict(rows)


def test_vllm_runs_on_one_gpu_with_tool_calling_as_documented() -> None:
    docs = resources()
    deployment = one(docs, "Deployment", "vllm")
    container = main_container(deployment, "vllm")
    repository, _, tag = container["image"].partition(":")
    assert repository == "vllm/vllm-openai" and tag not in ("", "latest")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    args = vllm_args(deployment)
    assert {"--model", "--served-model-name", "--enable-auto-tool-choice"} <= set(args)
    model = args["--model"]
    assert model is not None
    assert args["--tool-call-parser"] == parsers_in_vllm_doc()[model]
    config = one(docs, "ConfigMap", "opsbot-config")
    assert config["data"]["OPSBOT_LLM_MODEL"] == args["--served-model-name"]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]["httpGet"]
        assert probe["path"] == "/health"
        assert port_of(container, probe["port"]) == int(args["--port"] or 0) == 8000


def test_the_bot_reaches_vllm_through_its_service() -> None:
    docs = resources()
    deployment = one(docs, "Deployment", "vllm")
    service = one(docs, "Service", "vllm")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(service["spec"]["selector"], labels)
    url = urlsplit(one(docs, "ConfigMap", "opsbot-config")["data"]["OPSBOT_LLM_URL"])
    assert url.hostname == service["metadata"]["name"] and url.path == "/v1"
    port = next(p for p in service["spec"]["ports"] if p["port"] == url.port)
    port_of(main_container(deployment, "vllm"), port["targetPort"])
    claim = pod_spec(deployment)["volumes"][0]["persistentVolumeClaim"]["claimName"]
    one(docs, "PersistentVolumeClaim", claim)


# --- Postgres through CloudNativePG (an example, outside the default) --------------------


def test_cnpg_patch_takes_the_database_url_from_the_clusters_app_secret() -> None:
    (cluster,) = load_all(K8S / "postgres-cnpg.example.yaml")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["kind"] == "Cluster"
    assert cluster["spec"]["instances"] >= 1
    (patch,) = load_all(K8S / "database-url-from-cnpg.patch.yaml")
    deployment = bot(resources())
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", "opsbot")
    spec = pod_spec(deployment)
    names = {c["name"] for c in spec["containers"] + spec.get("initContainers", [])}
    patched = patch["spec"]["template"]["spec"]
    for container in patched["containers"] + patched.get("initContainers", []):
        assert container["name"] in names
        (env,) = container["env"]
        assert env["name"] == "OPSBOT_DATABASE_URL" in documented_settings()
        # CloudNativePG names the application secret <cluster>-app; `uri` is postgresql://…
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}


def test_an_overlay_with_cnpg_builds_and_validates(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed; the patch was checked structurally instead")
    base = os.path.relpath(K8S, tmp_path)  # kustomize takes no absolute paths
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "chatops",
        "resources": [base, f"{base}/postgres-cnpg.example.yaml"],
        "patches": [{"path": f"{base}/database-url-from-cnpg.patch.yaml"}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    built = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    docs = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert {d["metadata"].get("namespace") for d in docs} == {"chatops"}
    deployment = bot(docs)
    kubernetes_validate.validate(deployment, validation_versions()[-1], strict=True)
    container = main_container(deployment, "opsbot")
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "opsbot-db-app"
    assert {"secretRef": {"name": "opsbot-secrets"}} in container["envFrom"]
    one(docs, "Cluster", "opsbot-db")
