"""Liveness and readiness.

``/livez`` says the process serves HTTP. ``/readyz`` says whether this replica can do its
work: 200 once the database answers, the agent has started (runbook index loaded) and the
servers that are set (Prometheus, Alertmanager, the model) answer; otherwise 503 with a
reason per dependency. Checks run side by side with a short timeout and are cached for a
moment, so probes stay cheap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bot import metrics
from bot.services import Services

CHECK_TIMEOUT_S = 2.0
CACHE_S = 2.0


@dataclass
class Readiness:
    services: Services
    _cached: tuple[float, dict[str, str | None]] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def report(self) -> dict[str, str | None]:
        """Each dependency: None when it is fine, else why not."""
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            checks = await self._check()
            self._cached = (time.monotonic(), checks)
        for name, problem in checks.items():
            metrics.DEPENDENCY_UP.labels(name).set(0 if problem else 1)
        metrics.READY.set(0 if any(checks.values()) else 1)
        return checks

    async def _check(self) -> dict[str, str | None]:
        settings = self.services.settings
        probes = {"database": self._database(), "agent": self._agent()}
        for name, base, path in (
            ("prometheus", settings.prometheus.url, "/-/ready"),
            ("alertmanager", settings.alertmanager.url, "/-/ready"),
            ("llm", settings.llm.url, "/models"),
        ):
            if base:
                probes[name] = _http(base + path, _auth(settings, name))
        results = await asyncio.gather(*probes.values())
        return dict(zip(probes, results, strict=True))

    async def _database(self) -> str | None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.services.store.ping), CHECK_TIMEOUT_S)
        except Exception as exc:
            return f"database does not answer ({type(exc).__name__})"
        return None

    async def _agent(self) -> str | None:
        services = self.services
        if services.startup_error:
            return f"could not start: {services.startup_error}"[:300]
        if not services.ready:
            return "starting (loading the runbook index and opening the checkpointer)"
        assert services.agent is not None
        tools = services.agent.context.tools
        try:
            await asyncio.to_thread(lambda: tools.runbooks)  # loaded once; off the event loop
        except Exception as exc:  # missing or mismatched index: the message says which
            return str(exc)[:300]
        return None


def _auth(settings: object, name: str) -> dict[str, str]:
    group = getattr(settings, name)
    token = getattr(group, "token", None) or getattr(group, "api_key", None)
    if token is None or token.get_secret_value() in ("", "none"):
        return {}
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


async def _http(url: str, headers: dict[str, str]) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code >= 400:
        return f"answered {response.status_code}"
    return None
