"""A stand-in for vLLM's OpenAI-compatible server, with runtime LoRA loading, for tests.

It answers the routes the vllm-lora target calls the way vLLM does (status codes and error
bodies from ``vllm/entrypoints/openai/models/serving.py`` and the API server):

- ``GET /health``: 200 with no body, 503 when the engine is dead (``healthy = False``);
- ``GET /v1/models``: the base model (``parent`` null) and each loaded adapter (``parent``
  the base model, ``root`` its path);
- ``POST /v1/completions`` and ``/v1/chat/completions``: for the base model or a loaded
  adapter (``model`` in the answer is the name asked, with ``usage``); 404 "The model `X`
  does not exist." for any other name;
- ``POST /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``: 200 with vLLM's plain-text
  success line, 400 "has already been loaded", 404 "cannot be found", 404 "No adapter
  found for PATH"; only with ``runtime_lora`` (vLLM's ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``),
  else they 404 like any unknown FastAPI route (``{"detail": "Not Found"}``).

Errors are vLLM's current shape, ``{"error": {"message", "type", "param", "code"}}``, or
with ``legacy_errors`` the flat one of vLLM before 0.10. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_http import serving

BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


@dataclass
class Recorded:
    method: str
    path: str
    body: Any = None


@dataclass
class VllmStandIn:
    base_model: str = BASE_MODEL
    #: vLLM runs with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True (the LoRA routes exist).
    runtime_lora: bool = True
    #: Its engine is alive (``/health`` 200); False: 503, as after EngineDeadError.
    healthy: bool = True
    #: Error bodies in vLLM's flat pre-0.10 shape instead of ``{"error": {...}}``.
    legacy_errors: bool = False
    adapters: dict[str, str] = field(default_factory=dict)  #: loaded: name to path
    #: Adapters whose load fails: name to (status, message or None for vLLM's default).
    broken: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    #: Loaded adapters whose completions fail with 500 (they load but do not answer).
    mute: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port; yields the base URL (no ``/v1``)."""
        with serving(_handler(self)) as url:
            self.url = url
            yield url

    def break_adapter(self, name: str, status: int = 404, message: str | None = None) -> None:
        """Make loading ``name`` fail: 404 as for a path with no adapter, else 400."""
        self.broken[name] = (status, message)

    def calls(self, method: str, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def unloaded(self) -> list[str]:
        """Names asked to be unloaded, in order (whether or not they were loaded)."""
        return [str(r.body.get("lora_name")) for r in self.calls("POST", "/v1/unload_lora_adapter")]

    # -- answers: (status, body or None, content type) ---------------------------------------

    def answer(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any, str]:
        routes: dict[tuple[str, str], Any] = {
            ("GET", "/health"): lambda: (200 if self.healthy else 503, None, ""),
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/completions"): lambda: self._complete(body, chat=False),
            ("POST", "/v1/chat/completions"): lambda: self._complete(body, chat=True),
        }
        if self.runtime_lora:
            routes[("POST", "/v1/load_lora_adapter")] = lambda: self._load(headers, body)
            routes[("POST", "/v1/unload_lora_adapter")] = lambda: self._unload(headers, body)
        route = routes.get((method, path))
        if route is not None:
            result: tuple[int, Any, str] = route()
            return result
        if any(p == path for _, p in routes):
            return 405, {"detail": "Method Not Allowed"}, "application/json"
        return 404, {"detail": "Not Found"}, "application/json"

    def _models(self) -> tuple[int, Any, str]:
        now = int(time.time())
        base = _card(self.base_model, root=self.base_model, parent=None, created=now)
        base["max_model_len"] = 4096
        with self.lock:
            loras = [
                _card(name, root=path, parent=self.base_model, created=now)
                for name, path in self.adapters.items()
            ]
        return 200, {"object": "list", "data": [base, *loras]}, "application/json"

    def _complete(self, body: Any, *, chat: bool) -> tuple[int, Any, str]:
        if not isinstance(body, dict):
            return self._error(400, "Expected a JSON object", "BadRequestError")
        model = body.get("model") or self.base_model
        with self.lock:
            known = model == self.base_model or model in self.adapters
        if not known:
            return self._error(
                404, f"The model `{model}` does not exist.", "NotFoundError", param="model"
            )
        if model in self.mute:
            return self._error(500, "EngineCore encountered an issue.", "InternalServerError")
        max_tokens = int(body.get("max_tokens") or 16)
        text = " ok" * max(1, min(max_tokens, 4))
        usage = {"prompt_tokens": 3, "completion_tokens": min(max_tokens, 4), "total_tokens": 7}
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "logprobs": None,
                "finish_reason": "length",
            }
            kind, prefix = "chat.completion", "chatcmpl"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
            kind, prefix = "text_completion", "cmpl"
        answer = {
            "id": f"{prefix}-{len(self.requests)}",
            "object": kind,
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        return 200, answer, "application/json"

    def _load(self, headers: Any, body: Any) -> tuple[int, Any, str]:
        refused = _json_only(headers, body)
        if refused:
            return refused
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return self._error(
                400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput"
            )
        with self.lock:
            if name in self.adapters:
                return self._error(
                    400,
                    f"The lora adapter '{name}' has already been loaded. If you want to load "
                    "the adapter in place, set 'load_inplace' to True.",
                    "InvalidUserInput",
                )
            if name in self.broken:
                return self._broken(name, path)
            self.adapters[name] = path
        return 200, f"Success: LoRA adapter '{name}' added successfully.", ""

    def _broken(self, name: str, path: str) -> tuple[int, Any, str]:
        status, message = self.broken[name]
        if status == 404:
            default = f"Loading lora {name} failed: No adapter found for {path}"
            return self._error(404, message or default, "NotFoundError")
        default = f"Loading lora {name} failed: LoRA rank 64 is greater than max_lora_rank 16."
        return self._error(status, message or default, "BadRequestError")

    def _unload(self, headers: Any, body: Any) -> tuple[int, Any, str]:
        refused = _json_only(headers, body)
        if refused:
            return refused
        name = body.get("lora_name")
        if not name:
            return self._error(
                400, "'lora_name' needs to be provided to unload a LoRA adapter.",
                "InvalidUserInput",
            )  # fmt: skip
        with self.lock:
            if name not in self.adapters:
                return self._error(
                    404, f"The lora adapter '{name}' cannot be found.", "NotFoundError"
                )
            del self.adapters[name]
        return 200, f"Success: LoRA adapter '{name}' removed successfully.", ""

    def _error(
        self, status: int, message: str, kind: str, param: str | None = None
    ) -> tuple[int, Any, str]:
        info = {"message": message, "type": kind, "param": param, "code": status}
        body = {"object": "error", **info} if self.legacy_errors else {"error": info}
        return status, body, "application/json"


def _card(name: str, *, root: str, parent: str | None, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": None,
        "permission": [{"id": f"modelperm-{name}", "object": "model_permission"}],
    }


def _json_only(headers: Any, body: Any) -> tuple[int, Any, str] | None:
    """vLLM's ``validate_json_request`` (415) and FastAPI's body validation (422)."""
    if "application/json" not in (headers.get("Content-Type") or "").lower():
        detail = "Unsupported Media Type: Only 'application/json' is allowed"
        return 415, {"detail": detail}, "application/json"
    if not isinstance(body, dict) or "lora_name" not in body:
        missing = [{"type": "missing", "loc": ["body", "lora_name"], "msg": "Field required"}]
        return 422, {"detail": missing}, "application/json"
    return None


def _handler(standin: VllmStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?", 1)[0]
            with standin.lock:
                standin.requests.append(Recorded(method, path, body))
            status, answer, kind = standin.answer(method, path, self.headers, body)
            self._send(status, answer, kind)

        def _send(self, status: int, answer: Any, kind: str) -> None:
            if answer is None:
                data = b""
            elif isinstance(answer, str):
                data = answer.encode()
            else:
                data = json.dumps(answer).encode()
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
            pass

    return Handler
