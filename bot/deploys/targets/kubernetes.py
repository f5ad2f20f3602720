"""The kubernetes deploy target: a model version is a rollout of the Deployment that serves
the model in an environment (vLLM's OpenAI-compatible server, ``vllm serve``).

``start`` patches the Deployment's container (a strategic merge patch, containers merged by
``name``): its ``args`` get ``--model`` (the version's weights), ``--served-model-name`` and
``--max-model-len`` and the version's extra flags, its image the ``image`` parameter, and the
pod template the annotations ``opsbot.dev/version`` and ``opsbot.dev/served-name``. The
template it replaces is kept in ``Started.ref`` and in the Deployment's annotation
``opsbot.dev/previous-template``. ``health`` waits as ``kubectl rollout status`` does.
``switch`` and ``retire`` have nothing to do: the rollout moves the Service's traffic and
stops the old pods. ``restore`` and ``abandon`` put the previous template back with a JSON
patch that replaces ``/spec/template`` whole.

Deployments are read as the API server's own JSON (``_preload_content=False``): the client's
models drop fields they do not know, and a template written back from them would lose what a
newer API server added. Every API or connection error becomes a ``TargetError`` with a short
reason (never the client's traceback, never a credential).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException, OpenApiException
from kubernetes.config.config_exception import ConfigException

from bot.deploys.targets.base import Live, Started, TargetError, served_name
from bot.settings import DeploySettings

VERSION = "opsbot.dev/version"
SERVED_NAME = "opsbot.dev/served-name"
PREVIOUS = "opsbot.dev/previous-template"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
REQUEST_TIMEOUT_S = 10.0

_FLAG = re.compile(r"^--?[A-Za-z]")
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-f]+>:?\s*")


# -- vLLM's command line -------------------------------------------------------------------


class Arg(NamedTuple):
    """One flag and its values (``name`` empty: the positional model of ``vllm serve``)."""

    name: str
    values: list[str]
    joined: bool = False  #: written ``--flag=value``

    def tokens(self) -> list[str]:
        if not self.name:
            return list(self.values)
        if self.joined and len(self.values) == 1:
            return [f"{self.name}={self.values[0]}"]
        return [self.name, *self.values]


def _key(name: str) -> str:
    """vLLM reads ``--max_model_len`` as ``--max-model-len``."""
    return name.lstrip("-").replace("_", "-")


def parse_args(tokens: list[str]) -> list[Arg]:
    """Group a command line: each flag takes the tokens up to the next flag as its values."""
    args: list[Arg] = []
    for token in tokens:
        if _FLAG.match(token):
            name, eq, value = token.partition("=")
            args.append(Arg(name, [value] if eq else [], bool(eq)))
        elif args and args[-1].name:
            args[-1].values.append(token)
        else:
            args.append(Arg("", [token]))
    return args


def merge_args(current: list[str], wanted: list[Arg]) -> list[str]:
    """``current`` with the values of ``wanted``'s flags replaced (in place, in the style they
    were written) and the flags it lacks appended; its other flags kept as they are."""
    by_key = {_key(a.name): a for a in wanted}
    placed: set[str] = set()
    merged: list[Arg] = []
    for arg in parse_args(current):
        positional_model = not arg.name and not merged  # vllm serve MODEL …
        key = "model" if positional_model else _key(arg.name)
        if not (arg.name or positional_model) or key not in by_key:
            merged.append(arg)
        elif key not in placed:
            merged.append(Arg(arg.name, by_key[key].values, arg.joined))
            placed.add(key)
    merged += [a for k, a in by_key.items() if k not in placed]
    return [token for arg in merged for token in arg.tokens()]


def weights(uri: str) -> str:
    """What ``--model`` loads: ``hf://org/repo`` is the Hub repository ``org/repo``."""
    return uri.removeprefix("hf://")


def extra_args(params: dict[str, Any]) -> list[Arg]:
    """The version's ``args`` parameter (a string or a list), as flags."""
    raw = params.get("args") or []
    tokens = shlex.split(raw) if isinstance(raw, str) else [str(t) for t in raw]
    args = parse_args(tokens)
    stray = [a.values[0] for a in args if not a.name]
    if stray:
        raise TargetError(f"args: {stray[0]!r} is not a --flag (vLLM flags only)")
    return args


def vllm_args(plan: dict[str, Any]) -> list[Arg]:
    """The flags a version sets: its weights, served name, context length and extra flags."""
    if not plan.get("uri"):
        raise TargetError(f"{plan['model']} {plan['version']} has no weights URI to serve")
    params = plan.get("params") or {}
    wanted = [
        Arg("--model", [weights(str(plan["uri"]))]),
        Arg("--served-model-name", [served_name(plan)]),
    ]
    if params.get("context_length"):
        wanted.append(Arg("--max-model-len", [str(int(params["context_length"]))]))
    return wanted + extra_args(params)


# -- the API's answers ----------------------------------------------------------------------


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _template(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"])


def _compact(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the Kubernetes ``Status`` an error answered, else its reason."""
    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or exc.reason or "no reason given")[:300]


def _connection_reason(exc: BaseException) -> str:
    """``[Errno 111] Connection refused``-like, without object addresses."""
    reason = getattr(exc, "reason", None) or exc
    text = _OBJECT_REPR.sub("", " ".join(str(reason).split()))
    return text[:300] or type(exc).__name__


def _check_deadline(deployment: dict[str, Any]) -> None:
    """A ``Progressing`` condition whose reason is ``ProgressDeadlineExceeded``: the rollout
    failed (the controller gave up after ``spec.progressDeadlineSeconds``)."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == DEADLINE_EXCEEDED:
            raise TargetError(
                f"rollout of Deployment {deployment['metadata']['name']} failed: "
                f"{DEADLINE_EXCEEDED}: {condition.get('message') or 'no message'}"
            )


def _rollout(deployment: dict[str, Any], generation: int) -> tuple[bool, str]:
    """Whether the rollout of ``generation`` finished, and what it waits for (as ``kubectl
    rollout status`` says it). A progress deadline exceeded is a TargetError."""
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < generation:
        return False, "waiting for the Deployment's update to be observed"
    _check_deadline(deployment)
    desired = int(deployment["spec"].get("replicas", 1))
    updated, replicas, available = (
        int(status.get(field) or 0)
        for field in ("updatedReplicas", "replicas", "availableReplicas")
    )
    if updated < desired:
        return False, f"{updated} of {desired} new replicas have been updated"
    if replicas > updated:
        return False, f"{replicas - updated} old replicas are pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas are available"
    return True, "successfully rolled out"


# -- configuration -------------------------------------------------------------------------


def load_configuration() -> client.Configuration:
    """The pod's service account in a cluster, else the kubeconfig (``KUBECONFIG`` or
    ``~/.kube/config``, its current context)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
        return configuration
    except ConfigException:
        pass
    # KUBECONFIG as it is now: the client reads the variable once, when it is imported.
    where = os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        config.load_kube_config(where, client_configuration=configuration, persist_config=False)
    except Exception as exc:  # the loader raises what its file, plugin or YAML raised
        raise TargetError(
            "no Kubernetes API configuration: not in a cluster (no service account token "
            f"mounted) and no usable kubeconfig at {where}: {_connection_reason(exc)}"
        ) from exc
    return configuration


# -- the target ----------------------------------------------------------------------------


class KubernetesTarget:
    name = "kubernetes"

    def __init__(
        self,
        settings: DeploySettings,
        api: client.AppsV1Api | None = None,
        *,
        poll_interval: float = 0.5,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.poll_interval, self.request_timeout = poll_interval, request_timeout
        self._api, self._lock = api, threading.Lock()

    # -- where ------------------------------------------------------------------------------

    @property
    def api(self) -> client.AppsV1Api:
        """The API client, configured at first use (so a bot without a cluster starts)."""
        with self._lock:
            if self._api is None:
                self._api = client.AppsV1Api(client.ApiClient(load_configuration()))
            return self._api

    @property
    def namespace(self) -> str:
        return self.settings.kubernetes_namespace

    def deployment_name(self, model: str, env: str) -> str:
        return self.settings.kubernetes_deployment.format(model=model, env=env)

    def address(self, model: str, env: str) -> str:
        return self.settings.kubernetes_address.format(
            model=model, env=env, namespace=self.namespace
        )

    # -- the steps --------------------------------------------------------------------------

    def preflight(self, plan: dict[str, Any]) -> None:
        """The Deployment and its container exist, it is not paused, and the bot may patch
        it (the patch ``start`` would send, sent as a server-side dry run)."""
        name = self.deployment_name(plan["model"], plan["env"])
        deployment = self._read(name)
        if deployment["spec"].get("paused"):
            raise TargetError(
                f"Deployment {name} in namespace {self.namespace} is paused: its rollouts do "
                f"not progress (kubectl rollout resume deployment/{name} -n {self.namespace})"
            )
        body = self._start_patch(plan, deployment, _template(deployment))
        self._patch(name, body, STRATEGIC_MERGE, dry_run=True)

    def current(self, model: str, env: str) -> Live | None:
        """The version the Deployment's pod template carries (None: no version the bot
        deployed, so nothing it knows serves)."""
        deployment = self._read(self.deployment_name(model, env))
        template = _template(deployment)
        notes = _annotations(template)
        if not notes.get(VERSION):
            return None
        version = notes[VERSION]
        served = notes.get(SERVED_NAME) or f"{model}-{version}"
        return Live(version, served, self.address(model, env), {"template": template})

    def start(self, plan: dict[str, Any]) -> Started:
        """Patch the container to the version; the rollout starts (old pods serve meanwhile,
        as the Deployment's strategy allows)."""
        name = self.deployment_name(plan["model"], plan["env"])
        deployment = self._read(name)
        previous = self._previous(deployment, str(plan["version"]))
        patched = self._patch(name, self._start_patch(plan, deployment, previous), STRATEGIC_MERGE)
        ref = {
            "namespace": self.namespace,
            "deployment": name,
            "container": self._container(deployment)["name"],
            "generation": int(patched["metadata"].get("generation") or 0),
            "previous_template": previous,
        }
        address = self.address(plan["model"], plan["env"])
        return Started(str(plan["version"]), served_name(plan), address, ref)

    def running(self, started: Started) -> bool:
        """Whether the Deployment's template still carries the started version."""
        deployment = self._read(started.ref["deployment"])
        return _annotations(_template(deployment)).get(VERSION) == started.version

    def health(self, started: Started, timeout: float) -> None:
        """Wait until the rollout finished: the patched generation observed, every replica
        updated and available, no old replica left."""
        self._wait(started.ref["deployment"], int(started.ref["generation"]), timeout,
                   version=started.version)  # fmt: skip

    def switch(self, model: str, env: str, started: Started) -> None:
        """Nothing to do: the rollout itself moved the traffic (the Service selects the
        Deployment's pods, and only ready pods of the new template are left)."""

    def restore(self, model: str, env: str, before: Live | None) -> None:
        """Put back the pod template that served before (``before``'s, else the one ``start``
        recorded on the Deployment) and wait for that rollout."""
        name = self.deployment_name(model, env)
        deployment = self._read(name)
        template = (before.ref.get("template") if before else None) or self._recorded(deployment)
        if template is None:
            raise TargetError(
                f"no record of the pod template that served Deployment {name} before: roll "
                f"back with kubectl rollout undo deployment/{name} -n {self.namespace}"
            )
        if _template(deployment) == template:
            return
        patched = self._replace_template(name, deployment, template)
        generation = int(patched["metadata"].get("generation") or 0)
        self._wait(name, generation, self.settings.health_timeout_seconds)

    def abandon(self, started: Started) -> None:
        """Put the template ``start`` replaced back while the Deployment still carries the
        started version (a second call finds it gone and does nothing). Kubernetes scales the
        old ReplicaSet back up; its pods were never all stopped by a rolling update."""
        name = started.ref["deployment"]
        previous = started.ref.get("previous_template")
        deployment = self._read(name)
        current = _template(deployment)
        if not previous or _annotations(current).get(VERSION) != started.version:
            return
        if current != previous:
            self._replace_template(name, deployment, previous)

    def retire(self, model: str, env: str, before: Live | None) -> None:
        """Nothing to do: the rollout stopped the old pods (the old ReplicaSet is kept at
        zero replicas, as ``revisionHistoryLimit`` says)."""

    # -- patches ----------------------------------------------------------------------------

    def _container(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """The container to patch: the one named in the settings, else the first."""
        containers = _template(deployment)["spec"].get("containers") or []
        wanted = self.settings.kubernetes_container
        for container in containers:
            if wanted is None or container.get("name") == wanted:
                return dict(container)
        names = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise TargetError(
            f"Deployment {deployment['metadata']['name']} has no container "
            f"{wanted or '(none at all)'} (its containers: {names}); set "
            "OPSBOT_DEPLOY_KUBERNETES_CONTAINER"
        )

    def _start_patch(
        self, plan: dict[str, Any], deployment: dict[str, Any], previous: dict[str, Any]
    ) -> dict[str, Any]:
        """The strategic merge patch that makes the container serve the plan's version."""
        container = self._container(deployment)
        patch: dict[str, Any] = {
            "name": container["name"],
            "args": merge_args([str(a) for a in container.get("args") or []], vllm_args(plan)),
        }
        image = (plan.get("params") or {}).get("image")
        if image:
            patch["image"] = str(image)
        notes = {VERSION: str(plan["version"]), SERVED_NAME: served_name(plan)}
        return {
            "metadata": {"annotations": {**notes, PREVIOUS: _compact(previous)}},
            "spec": {
                "template": {"metadata": {"annotations": notes}, "spec": {"containers": [patch]}}
            },
        }

    def _previous(self, deployment: dict[str, Any], version: str) -> dict[str, Any]:
        """The template the version replaces: the one recorded by an earlier attempt that
        patched the Deployment already, else the Deployment's template now."""
        recorded = self._recorded(deployment)
        carried = _annotations(_template(deployment)).get(VERSION)
        if carried == version and recorded is not None:
            return recorded
        return _template(deployment)

    @staticmethod
    def _recorded(deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The template ``start`` replaced, as recorded on the Deployment."""
        try:
            recorded = json.loads(_annotations(deployment).get(PREVIOUS) or "null")
        except ValueError:
            return None
        return recorded if isinstance(recorded, dict) else None

    def _replace_template(
        self, name: str, deployment: dict[str, Any], template: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON patch replacing the whole template (a merge would keep the new fields), and
        the Deployment's version annotations set to the template's."""
        ops: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/template", "value": template}]
        have, want = _annotations(deployment), _annotations(template)
        notes = {k: want[k] for k in (VERSION, SERVED_NAME) if k in want}
        if not deployment["metadata"].get("annotations"):
            ops += [{"op": "add", "path": "/metadata/annotations", "value": notes}] if notes else []
        else:
            for key in (VERSION, SERVED_NAME):
                path = f"/metadata/annotations/{_pointer(key)}"
                if key in notes:
                    ops.append({"op": "add", "path": path, "value": notes[key]})
                elif key in have:
                    ops.append({"op": "remove", "path": path})
        return self._patch(name, ops, JSON_PATCH)

    # -- waiting ----------------------------------------------------------------------------

    def _wait(self, name: str, generation: int, timeout: float, version: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            deployment = self._read(name)
            carried = _annotations(_template(deployment)).get(VERSION)
            if version is not None and carried != version:
                raise TargetError(
                    f"Deployment {name} no longer runs {version} (its template carries "
                    f"{carried or 'no version'} now): it was changed meanwhile"
                )
            done, waiting = _rollout(deployment, generation)
            if done:
                return
            if time.monotonic() >= deadline:
                raise TargetError(
                    f"rollout of Deployment {name} did not finish in {timeout:g} s: {waiting}"
                )
            time.sleep(self.poll_interval)

    # -- the API ----------------------------------------------------------------------------

    def _read(self, name: str) -> dict[str, Any]:
        """The Deployment, status included (its main resource: the Role needs no
        ``deployments/status``)."""
        read = self.api.read_namespaced_deployment
        return self._call(f"Deployment {name}", read, name, self.namespace)

    def _patch(self, name: str, body: Any, content_type: str, dry_run: bool = False) -> Any:
        """PATCH with the content type named (the client would pick one from the body)."""
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(f"Deployment {name}", self.api.patch_namespaced_deployment, name,
                          self.namespace, body, _content_type=content_type, **extra)  # fmt: skip

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The API server's JSON answer; every failure a TargetError with a short reason."""
        try:
            response = method(*args, _preload_content=False,
                              _request_timeout=self.request_timeout, **kwargs)  # fmt: skip
        except ApiException as exc:
            raise self._api_error(what, exc) from exc
        except (OpenApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(what, exc) from exc
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise TargetError(f"{what}: the Kubernetes API at {self._host()} answered "
                              "something that is not JSON") from exc  # fmt: skip

    def _host(self) -> str:
        return str(self.api.api_client.configuration.host)

    def _unreachable(self, what: str, exc: BaseException) -> TargetError:
        return TargetError(
            f"{what}: cannot reach the Kubernetes API at {self._host()}: {_connection_reason(exc)}"
        )

    def _api_error(self, what: str, exc: ApiException) -> TargetError:
        status, detail, ns = int(exc.status or 0), _status_message(exc), self.namespace
        if status == 0:  # the client's own failure (TLS): no answer from the server
            return self._unreachable(what, exc)
        if status == 401:
            return TargetError(
                f"{what}: the Kubernetes API at {self._host()} rejected the bot's credentials "
                "(401 Unauthorized): its service account token is missing, wrong or expired; "
                f"the bot's service account needs get and patch on deployments in namespace {ns}"
            )
        if status == 403:
            return TargetError(
                f"{what}: forbidden (403): the bot's service account lacks get/patch on "
                f"deployments in namespace {ns} ({detail})"
            )
        if status == 404:
            return TargetError(
                f"{what}: not found in namespace {ns} (OPSBOT_DEPLOY_KUBERNETES_DEPLOYMENT and "
                "OPSBOT_DEPLOY_KUBERNETES_NAMESPACE name it)"
            )
        return TargetError(f"{what}: the Kubernetes API answered {status} {exc.reason}: {detail}")
