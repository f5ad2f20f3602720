"""The stable address of each model and environment: ``/models/{model}/{env}/v1/…`` on the
bot's port, an OpenAI-compatible endpoint that proxies to whichever version serves now
(``model_serving``, moved atomically by a deploy's switch). Requests are counted per model,
environment and version, with latency, tokens and requests in flight, in ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import metrics
from bot.deploys.serving import ModelServing

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
TIMEOUT_S = 300.0


class ModelRouter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S)

    def serving(self, model: str, env: str) -> ModelServing | None:
        with Session(self.engine) as session:
            return session.get(ModelServing, (model, env))

    async def handle(self, request: Request) -> Response:
        model, env = request.path_params["model"], request.path_params["env"]
        live = await asyncio.to_thread(self.serving, model, env)
        if live is None:
            return JSONResponse(
                {"error": {"message": f"nothing serves {model} in {env}; deploy a version"}},
                status_code=404,
            )
        labels = (model, env, live.version)
        metrics.ROUTER_IN_FLIGHT.labels(*labels).inc()
        started = time.monotonic()
        code = "502"
        try:
            raw = await request.body()
            body = _as_served(raw, live.served_name)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            if body is not raw:  # rewritten as JSON: say so, whatever the client's header was
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                headers["content-type"] = "application/json"
            upstream = await self._client.request(
                request.method, f"{live.upstream}/{request.path_params['path']}",
                content=body, headers=headers, params=request.query_params,
            )  # fmt: skip
            code = str(upstream.status_code)
            _count_tokens(labels, upstream)
            return Response(upstream.content, status_code=upstream.status_code,
                            media_type=upstream.headers.get("content-type"))  # fmt: skip
        except httpx.HTTPError as exc:
            message = f"{model} {live.version} in {env} did not answer ({type(exc).__name__})"
            return JSONResponse({"error": {"message": message}}, status_code=502)
        finally:
            metrics.ROUTER_IN_FLIGHT.labels(*labels).dec()
            metrics.ROUTER_REQUESTS.labels(*labels, code).inc()
            metrics.ROUTER_LATENCY.labels(*labels).observe(time.monotonic() - started)

    async def close(self) -> None:
        await self._client.aclose()


def _count_tokens(labels: tuple[str, str, str], response: httpx.Response) -> None:
    if "json" not in response.headers.get("content-type", ""):
        return
    try:
        usage = json.loads(response.content).get("usage") or {}
    except (ValueError, AttributeError):
        return
    for kind in ("prompt", "completion"):
        if isinstance(usage.get(f"{kind}_tokens"), int):
            metrics.ROUTER_TOKENS.labels(*labels, kind).inc(usage[f"{kind}_tokens"])


def _as_served(body: bytes, served_name: str) -> bytes:
    """A JSON request names the live version's served name, whatever the client sent: the
    stable address hides which version answers (the response's ``model`` tells)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    return json.dumps({**data, "model": served_name}).encode()
