"""The vllm-lora deploy target: a model version is a LoRA adapter on a running vLLM server.

``start`` loads the version's adapter at runtime (``POST /v1/load_lora_adapter``, which vLLM
only routes when it runs with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``); ``health`` waits
until ``/v1/models`` lists it with a parent (the base model) and one short completion with
it answers; ``switch`` points the bot's stable address (``bot/http/router.py``) at it, the
router rewriting each request's ``model`` to the adapter's name; ``retire`` unloads the
adapter that served before (never the base model). Every vLLM answer that is not a success
becomes a ``TargetError`` carrying vLLM's own message.

vLLM's answers this module relies on (``vllm/entrypoints/openai/serving_models.py``, now
``models/serving.py``): errors are ``{"error": {"message", "type", "param", "code"}}``
(before v0.10 a flat ``{"object": "error", "message", …}``); unloading a name that is not
loaded answers 404 "The lora adapter 'NAME' cannot be found."; loading a loaded name answers
400 "The lora adapter 'NAME' has already been loaded."; a path with no adapter answers 404
"Loading lora NAME failed: No adapter found for PATH". Without the environment variable the
routes do not exist and FastAPI answers 404 ``{"detail": "Not Found"}``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bot.deploys.serving import Serving, stable_address
from bot.deploys.targets.base import Live, Started, TargetError, served_name
from bot.settings import Settings

RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
#: A name no adapter has: unloading it asks vLLM whether the LoRA routes exist, changing nothing.
PROBE_NAME = "opsbot-preflight-probe-no-such-adapter"
TIMEOUT_S = 10.0
COMPLETION_TIMEOUT_S = 30.0


class VllmLoraTarget:
    name = "vllm-lora"
    #: Seconds ``retire`` waits after the switch before unloading, for requests in flight.
    drain_s = 2.0

    def __init__(
        self,
        settings: Settings,
        serving: Serving,
        client: httpx.Client | None = None,
        poll: float = 0.5,
    ) -> None:
        self.settings, self.serving, self.poll = settings, serving, poll
        self.client = client or httpx.Client(timeout=TIMEOUT_S)

    # -- where ------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        """vLLM's base URL, without ``/v1``."""
        url = self.settings.deploy.vllm_url
        if not url:
            raise TargetError(
                "the vllm-lora target needs the vLLM server's URL: set OPSBOT_DEPLOY_VLLM_URL "
                "(e.g. http://vllm:8000)"
            )
        return url.rstrip("/").removesuffix("/v1")

    @property
    def upstream(self) -> str:
        return f"{self.root}/v1"

    def current(self, model: str, env: str) -> Live | None:
        return self.serving.get(model, env)

    def address(self, model: str, env: str) -> str:
        return stable_address(self.settings, model, env)

    # -- the steps --------------------------------------------------------------------------

    def preflight(self, plan: dict[str, Any]) -> None:
        lora_path(plan)
        self._check_health()
        self._check_runtime_lora()

    def start(self, plan: dict[str, Any]) -> Started:
        name, path = served_name(plan), lora_path(plan)
        reply = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        message = vllm_message(reply)
        if reply.status_code == 400 and message and "already been loaded" in message:
            self._check_same_adapter(name, path)  # an earlier attempt of the job loaded it
        elif _route_missing(reply):
            raise self._no_runtime_lora()
        elif reply.status_code != 200:
            raise TargetError(
                f"vLLM at {self.root} could not load adapter {name} from {path} "
                f"({reply.status_code}): {reason(reply)}"
            )
        ref = {"lora_name": name, "lora_path": path}
        return Started(str(plan["version"]), name, self.upstream, ref)

    def running(self, started: Started) -> bool:
        card = self._models().get(started.served_name)
        return card is not None and card.get("parent") is not None

    def health(self, started: Started, timeout: float) -> None:
        """Return once vLLM lists the adapter and completes with it; else TargetError."""
        deadline = time.monotonic() + timeout
        while True:
            why = self._unanswered(started.served_name, deadline)
            if why is None:
                return
            if time.monotonic() + self.poll > deadline:
                raise TargetError(
                    f"adapter {started.served_name} not healthy after {timeout:g} s: {why}"
                )
            time.sleep(self.poll)

    def switch(self, model: str, env: str, started: Started) -> None:
        self.serving.point(model, env, started)

    def restore(self, model: str, env: str, before: Live | None) -> None:
        self.serving.point(model, env, before)

    def abandon(self, started: Started) -> None:
        card = self._models().get(started.served_name)
        if card is not None and card.get("parent") is not None:
            self._unload(started.served_name)

    def retire(self, model: str, env: str, before: Live | None) -> None:
        """Unload the adapter that served before, if it is one of this vLLM's adapters."""
        if before is None or before.upstream.rstrip("/") != self.upstream:
            return  # nothing served, or another server did: not ours to unload
        live = self.serving.get(model, env)
        if live is not None and live.served_name == before.served_name:
            return  # the same adapter still serves
        card = self._models().get(before.served_name)
        if card is None or card.get("parent") is None:
            return  # already gone, or the base model: never unloaded
        time.sleep(self.drain_s)
        self._unload(before.served_name)

    # -- checks -----------------------------------------------------------------------------

    def _check_health(self) -> None:
        try:
            reply = self.client.get(f"{self.root}/health", timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise TargetError(
                f"vLLM at {self.root} does not answer ({_what(exc)}): is the server running?"
            ) from None
        if reply.status_code == 503:
            raise TargetError(
                f"vLLM at {self.root} is unhealthy: /health answered 503 (its engine is dead; "
                "restart the server)"
            )
        if reply.status_code != 200:
            raise TargetError(
                f"vLLM at {self.root} is unhealthy: /health answered {reply.status_code}"
            )

    def _check_runtime_lora(self) -> None:
        reply = self._post("/v1/unload_lora_adapter", {"lora_name": PROBE_NAME})
        if reply.status_code == 200:
            return  # someone had loaded an adapter by that name; the routes exist
        if _route_missing(reply):
            raise self._no_runtime_lora()
        if reply.status_code != 404:
            raise TargetError(
                f"vLLM at {self.root} refused POST /v1/unload_lora_adapter "
                f"({reply.status_code}): {reason(reply)}"
            )

    def _no_runtime_lora(self) -> TargetError:
        return TargetError(
            f"vLLM at {self.root} does not load LoRA adapters at runtime: "
            f"/v1/load_lora_adapter and /v1/unload_lora_adapter are not routes there (404). "
            f"Start it with {RUNTIME_LORA_ENV}=True and --enable-lora"
        )

    def _check_same_adapter(self, name: str, path: str) -> None:
        card = self._models().get(name)
        if card is None or card.get("parent") is None:
            raise TargetError(
                f"vLLM at {self.root} says adapter {name} is loaded but does not list it as "
                "an adapter in /v1/models"
            )
        root = card.get("root")
        if root and root != path:
            raise TargetError(
                f"an adapter named {name} is already loaded on {self.root} from {root}, not "
                f"{path}: unload it or give this version another served_name"
            )

    def _unanswered(self, name: str, deadline: float) -> str | None:
        """Why the adapter does not answer yet (None: it does)."""
        try:
            card = self._models().get(name)
        except TargetError as exc:
            return str(exc)
        if card is None:
            return "/v1/models does not list it"
        if card.get("parent") is None:
            return f"/v1/models lists {name} as a base model, not an adapter"
        left = max(0.1, min(COMPLETION_TIMEOUT_S, deadline - time.monotonic()))
        body = {"model": name, "prompt": "Hello", "max_tokens": 1}
        try:
            reply = self._post("/v1/completions", body, timeout=left)
        except TargetError as exc:
            return str(exc)
        if reply.status_code != 200:
            return f"a completion answered {reply.status_code}: {reason(reply)}"
        return None

    # -- vLLM's routes ----------------------------------------------------------------------

    def _models(self) -> dict[str, dict[str, Any]]:
        """``/v1/models`` by id: the base model (``parent`` null) and the loaded adapters."""
        try:
            reply = self.client.get(f"{self.upstream}/models", timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise TargetError(
                f"vLLM at {self.root} did not answer GET /v1/models ({_what(exc)})"
            ) from None
        if reply.status_code != 200:
            raise TargetError(
                f"vLLM at {self.root} answered GET /v1/models with {reply.status_code}: "
                f"{reason(reply)}"
            )
        try:
            cards = reply.json().get("data") or []
        except (ValueError, AttributeError):
            raise TargetError(
                f"vLLM at {self.root} answered GET /v1/models with no model list"
            ) from None
        return {str(c["id"]): c for c in cards if isinstance(c, dict) and "id" in c}

    def _unload(self, name: str) -> None:
        reply = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if reply.status_code == 200 or (reply.status_code == 404 and _names(reply, name)):
            return  # unloaded, or it was not loaded (any more)
        if _route_missing(reply):
            raise self._no_runtime_lora()
        raise TargetError(
            f"vLLM at {self.root} could not unload adapter {name} ({reply.status_code}): "
            f"{reason(reply)}"
        )

    def _post(self, path: str, body: dict[str, Any], timeout: float = TIMEOUT_S) -> httpx.Response:
        try:
            return self.client.post(f"{self.root}{path}", json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise TargetError(
                f"vLLM at {self.root} did not answer POST {path} ({_what(exc)})"
            ) from None


def lora_path(plan: dict[str, Any]) -> str:
    """What vLLM loads the adapter from: a path on its host or a Hugging Face repo id."""
    uri = str(plan.get("uri") or "").strip()
    if not uri:
        raise TargetError(f"version {plan.get('version')} names no adapter (its URI is empty)")
    if uri.startswith("hf://"):
        return uri.removeprefix("hf://")
    return uri.removeprefix("file://")


def vllm_message(reply: httpx.Response) -> str | None:
    """The message of one of vLLM's error answers (either shape), else None."""
    try:
        body = reply.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if body.get("object") == "error" and isinstance(body.get("message"), str):
        return str(body["message"])
    return None


def reason(reply: httpx.Response) -> str:
    """vLLM's message, else FastAPI's detail, else the start of the body."""
    message = vllm_message(reply)
    if message:
        return message
    try:
        body = reply.json()
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
    except ValueError:
        pass
    return reply.text.strip()[:300] or reply.reason_phrase


def _names(reply: httpx.Response, name: str) -> bool:
    """Whether vLLM itself answered about adapter ``name`` (not a missing route)."""
    message = vllm_message(reply)
    return bool(message) and f"'{name}'" in str(message)


def _route_missing(reply: httpx.Response) -> bool:
    """A bare 404 (FastAPI's ``{"detail": "Not Found"}``), not one of vLLM's own answers,
    which always say what was not found: the route does not exist."""
    return reply.status_code == 404 and reason(reply).strip().lower() in ("not found", "")


def _what(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {type(exc).__name__}"
    return type(exc).__name__
