"""A scripted OpenAI-compatible judge for the eval tests: it proves the wiring of the judged
metrics (requests reach the judge, answers are parsed, failures become ``judge_error``); its
scores are never a measure of quality.

ragas asks its judge through instructor in JSON mode: the prompt carries the JSON schema of
the answer it wants. The stand-in finds that schema in the messages and answers with an
instance of it (the first enum value, 1 for integers, "yes" for strings, one item per
list), so every verdict is positive. ``mode`` makes it misbehave: ``garbage`` answers text
that is not JSON, ``error`` answers HTTP 500. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tests.local_http import serving

MODEL = "scripted-judge"


def instance(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A value that validates against ``schema`` (the subset pydantic writes)."""
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return instance(options[0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, defs) for name, sub in props.items()}
    if kind == "array":
        return [instance(schema.get("items", {"type": "string"}), defs)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return "yes"


def find_schema(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema quoted in the prompt: the first JSON object with ``properties``."""
    decoder = json.JSONDecoder()
    for message in messages:
        content = message.get("content")
        texts = [content] if isinstance(content, str) else [
            part.get("text", "") for part in content or [] if isinstance(part, dict)
        ]  # fmt: skip
        for text in texts:
            start = text.find("{")
            while start != -1:
                try:
                    found, _ = decoder.raw_decode(text, start)
                except json.JSONDecodeError:
                    found = None
                if isinstance(found, dict) and "properties" in found:
                    return found
                start = text.find("{", start + 1)
    return None


@dataclass
class JudgeStandIn:
    mode: Literal["ok", "garbage", "error"] = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
        if self.mode == "error":
            return 500, {"error": {"message": "judge exploded", "type": "server_error"}}
        if self.mode == "garbage":
            content = "I think the answer is fine, mostly."
        else:
            schema = find_schema(body.get("messages", [])) or {"type": "object"}
            content = json.dumps(instance(schema, schema.get("$defs", {})))
        return 200, {
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
            "model": body.get("model", MODEL),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip


@contextmanager
def judge_server(mode: Literal["ok", "garbage", "error"] = "ok") -> Iterator[JudgeStandIn]:
    judge = JudgeStandIn(mode=mode)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "not JSON"}})
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            self._send(*judge.answer(body))

    with serving(Handler) as base:
        judge.url = f"{base}/v1"
        yield judge
