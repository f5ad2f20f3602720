"""Running an approved request on the deploy target, once.

``approved → running`` is a compare-and-set that counts the execution; then the target
starts the new version, waits for it to be healthy, switches the stable address to it and
stops the old one (``running → verifying → succeeded``). A version that does not start or
never turns healthy leaves the old one serving (``failed``, with the reason and the tail
of the server's log). Each step is in the job's progress, so a retried job (the bot died
mid-deploy) picks up where it stopped instead of starting a second server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx

from bot import metrics
from bot.deploys.local import LocalTarget, Started, TargetError, alive, stable_address
from bot.deploys.requests import (
    FAILED,
    ROLLED_BACK,
    RUNNING,
    SUCCEEDED,
    VERIFYING,
    DeployRequest,
)
from bot.slack.delivery import Delivery
from bot.work.queue import JobBase
from bot.work.workers import Handler, JobRun
from tools.deploy.analysis import SUCCESSFUL, AnalysisRun, Measurement
from tools.metrics.client import Prometheus

if TYPE_CHECKING:
    from bot.deploys.service import Deploys

log = logging.getLogger(__name__)
#: The queue of deploy executions: a pool of its own, so a long deploy holds no answer slot.
DEPLOYS = "deploys"


def execute_job(request: DeployRequest) -> JobBase:
    return JobBase(
        queue=DEPLOYS, kind="deploy_execute", serial_key=f"target:{request.model}:{request.env}",
        dedup_key=f"execute:{request.id}", payload={"request_id": request.id}, max_attempts=3,
    )  # fmt: skip


class Execution:
    def __init__(self, deploys: Deploys, target: LocalTarget) -> None:
        self.deploys, self.target = deploys, target

    def handlers(self) -> dict[str, Handler]:
        return {"deploy_execute": self}

    def address(self, model: str, env: str) -> str:
        return stable_address(self.deploys.services.settings, model, env)

    async def run(self, run: JobRun) -> None:
        d = self.deploys
        request_id = int(run.job.payload["request_id"])
        if not run.progress.get("won"):
            if not await asyncio.to_thread(d.requests.start_execution, request_id):
                return  # not approved (any more), or another attempt runs it
            await run.record(won=True)
        request = await asyncio.to_thread(d.requests.get, request_id)
        assert request is not None
        delivery = Delivery(d.services.client, run, request.channel, request.thread_ts, "exec.")
        await d.show(request)
        started = await self._start(run, request)
        try:
            await asyncio.to_thread(self.target.health, started)
        except TargetError as exc:
            await self._failed(request, delivery, str(exc))
            return
        before = await asyncio.to_thread(self.target.current, request.model, request.env)
        old = await asyncio.to_thread(self.target.switch, request.model, request.env, started)
        await asyncio.to_thread(d.registry.set_live, request.model, request.env, request.version)
        await asyncio.to_thread(d.requests.move, request_id, RUNNING, VERIFYING)
        problem = await self._verify(request, started)
        if problem is None:
            phase = await self._analyse(request, delivery)
            if phase != SUCCESSFUL:
                problem = f"verification {phase.lower()}"
        if problem:  # the old server still runs: the address goes back to it
            await asyncio.to_thread(self.target.restore, request.model, request.env, before)
            if request.from_version:
                await asyncio.to_thread(
                    d.registry.set_live, request.model, request.env, request.from_version
                )
            await asyncio.to_thread(self.target.stop, started.pid)
            await self._failed(request, delivery, problem, rolled_back=bool(request.from_version))
            return
        await asyncio.to_thread(d.requests.move, request_id, VERIFYING, SUCCEEDED)
        metrics.DEPLOYS.labels(request.env, request.action, "succeeded").inc()
        await asyncio.to_thread(self.target.stop, old if old != started.pid else None, 2.0)
        await self._audit(request, "deployed")
        latest = await asyncio.to_thread(d.requests.get, request_id)
        assert latest is not None
        await d.show(latest)
        await delivery.post_once(
            "done_ts",
            f"{request.model} {request.version} serves {request.env} at "
            f"{self.address(request.model, request.env)} (served name `{started.served_name}`).",
        )

    async def _start(self, run: JobRun, request: DeployRequest) -> Started:
        known = run.progress.get("started")
        if known and alive(int(known["pid"])):
            return Started(**{**known, "log": self.target.servers / known["log"]})
        started = await asyncio.to_thread(self.target.start, request.plan)
        await run.record(started={"version": started.version, "served_name": started.served_name,
                                  "upstream": started.upstream, "pid": started.pid,
                                  "log": started.log.name})  # fmt: skip
        return started

    async def _verify(self, request: DeployRequest, started: Started) -> str | None:
        """The checks after the switch: a completion through the stable address is answered
        by the new version's served name."""
        url = f"{self.address(request.model, request.env)}/completions"
        body = {"model": started.served_name, "prompt": "Hello", "max_tokens": 1}
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                response = await client.post(url, json=body)
            served = response.json().get("model")
        except (httpx.HTTPError, ValueError) as exc:
            return f"the stable address did not answer ({type(exc).__name__})"
        if response.status_code != 200 or served != started.served_name:
            return f"the stable address answered {response.status_code} from {served!r}"
        return None

    async def _analyse(self, request: DeployRequest, delivery: Delivery) -> str:
        """The checks of the model and environment, each measurement said in the thread."""
        if request.action == "rollback":  # back to a version that passed: health only
            return SUCCESSFUL
        checks = await asyncio.to_thread(self.deploys.checks_for, request.model, request.env)
        if not checks:
            return SUCCESSFUL
        loop = asyncio.get_running_loop()
        settings = self.deploys.services.settings.prometheus

        def measure(query: str) -> list[float]:
            with Prometheus(settings, query_timeout=settings.query_timeout) as prometheus:
                return [s.points[-1][1] for s in prometheus.instant(query) if s.points]

        def said(m: Measurement) -> None:
            n = sum(1 for x in run.measurements if x.check == m.check)
            value = m.error or (", ".join(f"{v:.4g}" for v in m.value or []) or "no data")
            text = f"check *{m.check}* #{n}: `{m.query}` → {value}: {m.phase}"
            asyncio.run_coroutine_threadsafe(
                delivery.post_once(f"check:{m.check}:{n}", text), loop
            ).result(30)

        run = AnalysisRun(checks, measure, said)
        phase = await asyncio.to_thread(run.run)
        await delivery.post_once("analysis_ts", f"Verification: {phase}.")
        return phase

    async def _failed(
        self, request: DeployRequest, delivery: Delivery, reason: str, rolled_back: bool = False
    ) -> None:
        d = self.deploys
        assert request.id is not None
        log.warning("deploy #%s failed: %s", request.id, reason.splitlines()[0][:200])
        await asyncio.to_thread(d.requests.move, request.id, (RUNNING, VERIFYING), FAILED,
                                note=reason[:2000])  # fmt: skip
        if rolled_back:  # the address went back to the version that served before
            await asyncio.to_thread(d.requests.move, request.id, FAILED, ROLLED_BACK)
        metrics.DEPLOYS.labels(request.env, request.action, "failed").inc()
        await self._audit(request, "deploy failed")
        latest = await asyncio.to_thread(d.requests.get, request.id)
        assert latest is not None
        await d.show(latest, note=f"Failed: {reason[:1500]}")
        old = f"{request.from_version} keeps serving" if request.from_version else "nothing changed"
        await delivery.post_once(
            "failed_ts", f"Deploy #{request.id} failed; {old}.\n```{reason[:2500]}```"
        )

    async def _audit(self, request: DeployRequest, action: str) -> None:
        await asyncio.to_thread(
            self.deploys.services.store.audit, source="deploy", user="opsbot", action=action,
            text=f"#{request.id} {request.model} {request.version} in {request.env}",
            channel=request.channel,
        )  # fmt: skip

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        request_id = int(run.job.payload["request_id"])
        request = await asyncio.to_thread(self.deploys.requests.get, request_id)
        if request is not None and request.state in (RUNNING, VERIFYING):
            delivery = Delivery(self.deploys.services.client, run, request.channel,
                                request.thread_ts, "exec.")  # fmt: skip
            await self._failed(request, delivery, f"{type(error).__name__}: {error}")
