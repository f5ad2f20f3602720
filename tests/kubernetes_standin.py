"""A local stand-in of the Kubernetes API's apps/v1 Deployment endpoints, for the kubernetes
deploy target's tests.

It serves, over HTTP on a loopback port (``tests/local_http.py``)::

    GET   /apis/apps/v1/namespaces/{namespace}/deployments/{name}
    GET   /apis/apps/v1/namespaces/{namespace}/deployments/{name}/status
    PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}   (?dryRun=All)

PATCH takes the three patch types of the API (``application/strategic-merge-patch+json``,
``application/merge-patch+json``, ``application/json-patch+json``); another content type is
415. Errors are ``Status`` objects as the API server writes them: 404 ``NotFound`` for an
unknown Deployment, 401 ``Unauthorized`` without the bearer token it may require, 403
``Forbidden`` for a verb its rules do not grant, 422 ``Invalid`` for an object the API would
refuse (a container without a name or image, a selector that does not select the template,
an annotation that is not a string), 409 ``Conflict`` for a stale ``resourceVersion``.

Objects have the documented Deployment shape (``apiVersion``, ``kind``, ``metadata`` with
``name``, ``namespace``, ``uid``, ``generation``, ``resourceVersion``, ``annotations``;
``spec`` with ``replicas``, ``selector``, ``strategy``, ``template``; ``status`` with the
replica counts and the ``Available`` and ``Progressing`` conditions) and get the API's
defaults for the pod template's fields.

The Deployment controller is simulated: a spec change bumps ``metadata.generation``, a
template change starts a rollout (a new ReplicaSet, revision + 1). ``rollout_s`` after the
change, the controller observes it (``status.observedGeneration``): every new replica is
updated and available while the old ones terminate; ``rollout_s`` later only new replicas
remain. A rollout of an image or version named with ``never_available`` keeps its new
replicas unavailable and, ``progress_deadline_s`` after it started, its ``Progressing``
condition turns ``status: "False", reason: "ProgressDeadlineExceeded"``.

Strategic merge is implemented for what the target sends: maps merge, ``null`` deletes a
key, the lists ``containers``, ``initContainers``, ``env``, ``volumes``, ``imagePullSecrets``
(by ``name``), ``volumeMounts`` (by ``mountPath``) and ``ports`` (by ``containerPort``) merge
by their merge key, ``$patch: replace`` / ``$patch: delete`` are honoured, other lists are
replaced and other ``$`` directives ignored.

Every request is recorded (method, path, query, content type, parsed body) in ``requests``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.local_http import serving

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REVISION = "deployment.kubernetes.io/revision"
MAX_ANNOTATIONS_BYTES = 256 * 1024
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
_PATH = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)(?P<sub>/status)?$"
)


class ApiError(Exception):
    """An answer other than 200: its code, ``Status.reason`` and ``Status.message``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": details or {},
            "code": self.code,
        }


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any


@dataclass
class _Rollout:
    started: float
    replica_set: str
    old_available: int
    failing: bool


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- patches -------------------------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def strategic_merge(target: Any, patch: Any, key: str = "") -> Any:
    """``patch`` applied to ``target`` by Kubernetes' strategic merge (the part of it the
    Deployment fields above need)."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return _without_nulls({k: v for k, v in patch.items() if k != "$patch"})
        merged = dict(target) if isinstance(target, dict) else {}
        for name, value in patch.items():
            if name.startswith("$"):
                continue
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = strategic_merge(merged.get(name), value, name)
        return merged
    if isinstance(patch, list) and isinstance(target, list) and key in MERGE_KEYS:
        return _merge_list(target, patch, MERGE_KEYS[key])
    return copy.deepcopy(patch)


def _merge_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    merged = [copy.deepcopy(item) for item in target]
    for item in patch:
        at = next((i for i, old in enumerate(merged) if old.get(merge_key) == item.get(merge_key)),
                  None)  # fmt: skip
        if item.get("$patch") == "delete":
            if at is not None:
                del merged[at]
        elif at is None:
            merged.append(_without_nulls(item))
        else:
            merged[at] = strategic_merge(merged[at], item)
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def _parts(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {pointer!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    parts = _parts(pointer)
    if not parts:
        raise ApiError(422, "Invalid", "a JSON patch operation cannot target the whole object")
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", f"path {pointer!r} does not exist") from None
    return node, parts[-1]


def _get(doc: Any, pointer: str) -> Any:
    node, last = _parent(doc, pointer)
    try:
        return node[int(last)] if isinstance(node, list) else node[last]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ApiError(422, "Invalid", f"path {pointer!r} does not exist") from None


def _add(doc: Any, pointer: str, value: Any) -> None:
    node, last = _parent(doc, pointer)
    if isinstance(node, list):
        node.insert(len(node) if last == "-" else int(last), copy.deepcopy(value))
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        raise ApiError(422, "Invalid", f"cannot add at {pointer!r}")


def _remove(doc: Any, pointer: str) -> Any:
    value = _get(doc, pointer)
    node, last = _parent(doc, pointer)
    del node[int(last) if isinstance(node, list) else last]
    return value


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            _add(doc, path, op["value"])
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            value = _remove(doc, op["from"]) if kind == "move" else _get(doc, op["from"])
            _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"the test operation on {path!r} failed")
        else:
            raise ApiError(422, "Invalid", f"unknown JSON patch operation {kind!r}")
    return doc


def apply_patch(content_type: str, obj: dict[str, Any], body: Any) -> dict[str, Any]:
    if content_type == STRATEGIC:
        result = strategic_merge(obj, body)
    elif content_type == MERGE:
        result = merge_patch(obj, body)
    elif content_type == JSON_PATCH:
        result = json_patch(obj, body)
    else:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media "
                       f"types include: {JSON_PATCH}, {MERGE}, {STRATEGIC}")  # fmt: skip
    if not isinstance(result, dict):
        raise ApiError(422, "Invalid", "the patched object is not an object")
    return result


# -- the API server's defaults and validation ----------------------------------------------


def default_template(template: dict[str, Any]) -> None:
    """The defaults the API server writes into a pod template it stores."""
    spec = template.setdefault("spec", {})
    for name, value in (("restartPolicy", "Always"), ("terminationGracePeriodSeconds", 30),
                        ("dnsPolicy", "ClusterFirst"), ("securityContext", {}),
                        ("schedulerName", "default-scheduler")):  # fmt: skip
        spec.setdefault(name, value)
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        pull = "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
        container.setdefault("imagePullPolicy", pull)
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")


def default_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    rolling = {"maxSurge": "25%", "maxUnavailable": "25%"}
    spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": rolling})
    default_template(spec.setdefault("template", {}))


def _invalid(name: str, problems: list[str]) -> ApiError:
    return ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: ' + ", ".join(problems))


def _annotation_problems(where: str, meta: dict[str, Any]) -> list[str]:
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        return [f"{where}.annotations: Invalid value: must be a map of strings"]
    problems = [f"{where}.annotations[{k}]: Invalid value: must be a string"
                for k, v in annotations.items() if not isinstance(v, str)]  # fmt: skip
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        problems.append(f"{where}.annotations: Too long: must have at most 262144 bytes")
    return problems


def _container_problems(containers: Any) -> list[str]:
    if not isinstance(containers, list) or not containers:
        return ["spec.template.spec.containers: Required value"]
    problems, names = [], set()
    for i, c in enumerate(containers):
        where = f"spec.template.spec.containers[{i}]"
        if not isinstance(c.get("name"), str) or not c.get("name"):
            problems.append(f"{where}.name: Required value")
        elif c["name"] in names:
            problems.append(f"{where}.name: Duplicate value: {c['name']!r}")
        names.add(c.get("name"))
        if not isinstance(c.get("image"), str) or not c.get("image"):
            problems.append(f"{where}.image: Required value")
        if "args" in c and not all(isinstance(a, str) for a in c["args"] or []):
            problems.append(f"{where}.args: Invalid value: must be strings")
    return problems


def validate(deployment: dict[str, Any]) -> None:
    """Raise 422 Invalid as the API server would for the problems it checks."""
    spec, name = deployment.get("spec") or {}, deployment["metadata"]["name"]
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    problems = _annotation_problems("metadata", deployment["metadata"])
    problems += _annotation_problems("spec.template.metadata", template.get("metadata") or {})
    problems += _container_problems((template.get("spec") or {}).get("containers"))
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        problems.append("spec.template.metadata.labels: Invalid value: `selector` does not "
                        "match template `labels`")  # fmt: skip
    if problems:
        raise _invalid(name, problems)


# -- the stand-in --------------------------------------------------------------------------


class KubernetesStandin:
    """The Deployments of a small cluster and their controller, served over HTTP."""

    def __init__(
        self,
        *,
        token: str | None = None,
        rules: dict[str, set[str]] | None = None,
        rollout_s: float = 0.05,
        progress_deadline_s: float = 0.3,
        service_account: str = "system:serviceaccount:ops:opsbot",
    ) -> None:
        self.token, self.service_account = token, service_account
        #: resource (``deployments``, ``deployments/status``) to the verbs it grants
        self.rules = rules if rules is not None else {
            "deployments": {"get", "patch"}, "deployments/status": {"get"},
        }  # fmt: skip
        self.rollout_s, self.progress_deadline_s = rollout_s, progress_deadline_s
        self.requests: list[Recorded] = []
        self.url = ""  #: while it serves
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._rollouts: dict[tuple[str, str], _Rollout] = {}
        self._never: set[tuple[str, str]] = set()
        self._version = 100
        self._lock = threading.RLock()

    # -- set-up and assertions --------------------------------------------------------------

    def add(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """Store a Deployment as created and fully rolled out; returns it as the API would."""
        obj = copy.deepcopy(deployment)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.update(generation=1, uid=str(uuid.uuid4()), creationTimestamp=_now())
        meta.setdefault("annotations", {})[REVISION] = "1"
        obj.update(apiVersion="apps/v1", kind="Deployment")
        default_spec(obj.setdefault("spec", {}))
        validate(obj)
        replicas = int(obj["spec"]["replicas"])
        rs = self._replica_set(obj)
        obj["status"] = self._complete(1, replicas, rs)
        with self._lock:
            meta["resourceVersion"] = self._next_version()
            self._objects[(meta["namespace"], meta["name"])] = obj
        return self.get(meta["namespace"], meta["name"])

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The Deployment now (its status as the controller left it)."""
        with self._lock:
            self._observe((namespace, name))
            return copy.deepcopy(self._objects[(namespace, name)])

    def never_available(self, *, image: str | None = None, version: str | None = None) -> None:
        """Rollouts of a template with this image (or ``opsbot.dev/version``) never finish."""
        if image:
            self._never.add(("image", image))
        if version:
            self._never.add(("version", version))

    def patches(self) -> list[Recorded]:
        """The PATCH requests that changed (could change) something: dry runs left out."""
        return [r for r in self.requests
                if r.method == "PATCH" and "All" not in r.query.get("dryRun", [])]  # fmt: skip

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a loopback port; yields the API server's URL."""
        handler = type("Handler", (_Handler,), {"standin": self})
        with serving(handler) as url:
            self.url = url
            try:
                yield url
            finally:
                self.url = ""

    # -- the controller ---------------------------------------------------------------------

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    @staticmethod
    def _replica_set(obj: dict[str, Any]) -> str:
        digest = hashlib.sha256(json.dumps(obj["spec"]["template"], sort_keys=True).encode())
        return f"{obj['metadata']['name']}-{digest.hexdigest()[:10]}"

    def _failing(self, template: dict[str, Any]) -> bool:
        images = {("image", c.get("image")) for c in template["spec"].get("containers", [])}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        version = annotations.get("opsbot.dev/version")
        return bool(self._never & (images | {("version", version)}))

    @staticmethod
    def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        now = _now()
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastUpdateTime": now, "lastTransitionTime": now}  # fmt: skip

    def _complete(self, generation: int, replicas: int, rs: str) -> dict[str, Any]:
        return {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                self._condition("Available", "True", "MinimumReplicasAvailable",
                                "Deployment has minimum availability."),
                self._condition("Progressing", "True", "NewReplicaSetAvailable",
                                f'ReplicaSet "{rs}" has successfully progressed.'),
            ],
        }  # fmt: skip

    def _progressing(self, generation: int, desired: int, rollout: _Rollout) -> dict[str, Any]:
        """New replicas created; available ones (all, or none when failing) beside the old."""
        old = rollout.old_available
        new_available = 0 if rollout.failing else desired
        expired = time.monotonic() - rollout.started >= self.progress_deadline_s
        progressing = (
            self._condition("Progressing", "False", "ProgressDeadlineExceeded",
                            f'ReplicaSet "{rollout.replica_set}" has timed out progressing.')
            if rollout.failing and expired
            else self._condition("Progressing", "True", "ReplicaSetUpdated",
                                 f'ReplicaSet "{rollout.replica_set}" is progressing.')
        )  # fmt: skip
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": desired + old,
            "updatedReplicas": desired,
            "readyReplicas": new_available + old,
            "availableReplicas": new_available + old,
            "conditions": [
                self._condition("Available", "True" if old or new_available else "False",
                                "MinimumReplicasAvailable", "Deployment has minimum availability."),
                progressing,
            ],
        }  # fmt: skip
        if rollout.failing:
            status["unavailableReplicas"] = desired
        return status

    def _observe(self, key: tuple[str, str]) -> None:
        """Move the Deployment's status on as far as the time since its change allows."""
        rollout, obj = self._rollouts.get(key), self._objects.get(key)
        if rollout is None or obj is None:
            return
        elapsed = time.monotonic() - rollout.started
        if elapsed < self.rollout_s:
            return
        generation, desired = obj["metadata"]["generation"], int(obj["spec"]["replicas"])
        if not rollout.failing and elapsed >= 2 * self.rollout_s:
            status = self._complete(generation, desired, rollout.replica_set)
        else:
            status = self._progressing(generation, desired, rollout)
        if _counts(status) != _counts(obj.get("status") or {}):
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self._next_version()

    # -- the endpoints ----------------------------------------------------------------------

    def authorize(self, authorization: str | None, verb: str, resource: str,
                  key: tuple[str, str]) -> None:  # fmt: skip
        if self.token is not None and authorization != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if verb not in self.rules.get(resource, set()):
            ns, name = key
            raise ApiError(403, "Forbidden",
                           f'{resource.split("/")[0]}.apps "{name}" is forbidden: User '
                           f'"{self.service_account}" cannot {verb} resource "{resource}" in '
                           f'API group "apps" in the namespace "{ns}"')  # fmt: skip

    def read(self, key: tuple[str, str]) -> dict[str, Any]:
        with self._lock:
            if key not in self._objects:
                raise ApiError(404, "NotFound", f'deployments.apps "{key[1]}" not found')
            return self.get(*key)

    def patch(self, key: tuple[str, str], content_type: str, body: Any,
              dry_run: bool) -> dict[str, Any]:  # fmt: skip
        with self._lock:
            old = self.read(key)
            new = apply_patch(content_type, old, body)
            self._keep_server_fields(old, new)
            default_spec(new.setdefault("spec", {}))
            validate(new)
            if dry_run:
                return new
            self._store(key, old, new)
            return self.get(*key)

    @staticmethod
    def _keep_server_fields(old: dict[str, Any], new: dict[str, Any]) -> None:
        """Status and the server's metadata are not the patch's to change."""
        meta, was = new.setdefault("metadata", {}), old["metadata"]
        if meta.get("resourceVersion") != was["resourceVersion"]:
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on deployments.apps "{was["name"]}": '
                           "the object has been modified; please apply your changes to the "
                           "latest version and try again")  # fmt: skip
        if meta.get("name") != was["name"] or meta.get("namespace") != was["namespace"]:
            raise _invalid(was["name"], ["metadata.name: Invalid value: field is immutable"])
        for name in ("uid", "generation", "creationTimestamp"):
            meta[name] = was[name]
        new["status"] = old["status"]
        new["apiVersion"], new["kind"] = "apps/v1", "Deployment"

    def _store(self, key: tuple[str, str], old: dict[str, Any], new: dict[str, Any]) -> None:
        meta = new["metadata"]
        if new["spec"] != old["spec"]:
            meta["generation"] = old["metadata"]["generation"] + 1
        if new["spec"]["template"] != old["spec"]["template"]:
            annotations = meta.setdefault("annotations", {})
            annotations[REVISION] = str(int(annotations.get(REVISION, "0")) + 1)
            self._rollouts[key] = _Rollout(
                time.monotonic(), self._replica_set(new),
                int(old["status"].get("availableReplicas") or 0),
                self._failing(new["spec"]["template"]),
            )  # fmt: skip
        elif new["spec"] != old["spec"] and key not in self._rollouts:
            # No new ReplicaSet (a scale, say): observed at once, a simplification.
            new["status"] = self._complete(meta["generation"], int(new["spec"]["replicas"]),
                                           self._replica_set(new))  # fmt: skip
        if new != old:
            meta["resourceVersion"] = self._next_version()
        self._objects[key] = new


def _counts(status: dict[str, Any]) -> tuple[Any, ...]:
    conditions = tuple((c["type"], c["status"], c["reason"]) for c in status.get("conditions", []))
    fields = ("observedGeneration", "replicas", "updatedReplicas", "availableReplicas")
    return tuple(status.get(f) for f in fields) + conditions


class _Handler(BaseHTTPRequestHandler):
    standin: ClassVar[KubernetesStandin]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on ``KubernetesStandin.requests``."""

    def do_GET(self) -> None:
        self._answer("GET")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip() or None
        body = self._body()
        self.standin.requests.append(Recorded(method, url.path, query, content_type, body))
        try:
            code, answer = 200, self._route(method, url.path, query, content_type, body)
        except ApiError as exc:
            code, answer = exc.code, exc.status()
        self._send(code, answer)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               content_type: str | None, body: Any) -> dict[str, Any]:  # fmt: skip
        match = _PATH.match(path)
        if match is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        key, sub = (match["ns"], match["name"]), bool(match["sub"])
        resource = "deployments/status" if sub else "deployments"
        verb = {"GET": "get", "PATCH": "patch"}.get(method)
        if verb is None or (sub and verb == "patch"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        self.standin.authorize(self.headers.get("Authorization"), verb, resource, key)
        if verb == "get":
            return self.standin.read(key)
        if isinstance(body, str):
            raise ApiError(400, "BadRequest", "the request body is not JSON")
        dry_run = query.get("dryRun") == ["All"]
        return self.standin.patch(key, content_type or "", body, dry_run)

    def _send(self, code: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
