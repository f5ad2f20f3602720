"""Running an approved request on the deploy target, once.

``approved → running`` is a compare-and-set that counts the execution; then the target
starts the new version beside the old one, waits for it to be healthy, switches the stable
address to it (``running → verifying``) and the verification decides: Successful →
``succeeded`` and the old version is retired; Failed or Error → the address goes back to
the old version (``failed → rolled_back``), or, with ``OPSBOT_DEPLOY_ROLLBACK=ask``, a Roll
back button waits for an approver; Inconclusive → Promote / Roll back buttons. A version
that does not start or never turns healthy leaves the old one serving (``failed``, with the
reason and the tail of the server's log). Each step is in the job's progress and the
target's handles are on the request, so a retried job (the bot died mid-deploy) continues
instead of starting a second server, and a later click can finish the deploy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bot import metrics
from bot.deploys.chart import checks_chart
from bot.deploys.requests import (
    FAILED,
    ROLLED_BACK,
    RUNNING,
    SUCCEEDED,
    VERIFYING,
    DeployRequest,
)
from bot.deploys.targets.base import Live, Started, Target, TargetError
from bot.slack.delivery import Delivery
from bot.work.queue import JobBase
from bot.work.workers import Handler, JobRun
from tools.base import ToolError
from tools.deploy.analysis import FAILED as CHECK_FAILED
from tools.deploy.analysis import (
    INCONCLUSIVE,
    SUCCESSFUL,
    AnalysisRun,
    Check,
    EvalGate,
    Measurement,
)
from tools.deploy.registry import file_digest
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


def conclude_job(request: DeployRequest, decision: str, user: str) -> JobBase:
    """A person's Promote or Roll back on a verification that waits: the first one counts."""
    return JobBase(
        queue=DEPLOYS, kind="deploy_conclude", serial_key=f"target:{request.model}:{request.env}",
        dedup_key=f"conclude:{request.id}", max_attempts=3,
        payload={"request_id": request.id, "decision": decision, "user": user},
    )  # fmt: skip


def _live(data: dict[str, Any] | None) -> Live | None:
    return Started.from_dict(data) if data else None


class Execution:
    def __init__(self, deploys: Deploys, target: Target) -> None:
        self.deploys, self.target = deploys, target
        self.settings = deploys.settings

    def handlers(self) -> dict[str, Handler]:
        return {"deploy_execute": self, "deploy_conclude": _Conclude(self)}

    def _delivery(self, run: JobRun, request: DeployRequest) -> Delivery:
        return Delivery(self.deploys.services.client, run, request.channel, request.thread_ts,
                        "exec.")  # fmt: skip

    async def run(self, run: JobRun) -> None:
        d = self.deploys
        request_id = int(run.job.payload["request_id"])
        won = bool(run.progress.get("won"))
        if not won and not await asyncio.to_thread(d.requests.start_execution, request_id):
            return  # not approved (any more), or another attempt runs it
        request = await asyncio.to_thread(d.requests.get, request_id)
        assert request is not None
        if not won:  # what serves now: where a failed verification sends the traffic back
            live = await asyncio.to_thread(self.target.current, request.model, request.env)
            await run.record(won=True, before=live.as_dict() if live else None)
        delivery = self._delivery(run, request)
        if not run.progress.get("plan_checked"):
            problem = await asyncio.to_thread(self._changed_since_approval, request)
            if problem:
                await self.fail(request, delivery, problem)
                return
            await run.record(plan_checked=True)
        await d.show(request)
        before = _live(run.progress.get("before"))
        try:
            started = await self._start(run, request)
        except TargetError as exc:
            await self.fail(request, delivery, str(exc))
            return
        handles = {"before": before.as_dict() if before else None, "started": started.as_dict()}
        await asyncio.to_thread(d.requests.update, request_id, handles=handles)
        request.handles = handles
        gates, checks = await asyncio.to_thread(d.verification, request.action, request.model,
                                                request.env, request.version)  # fmt: skip
        if not run.progress.get("switched_at"):
            timeout = self.settings.health_timeout_seconds
            try:
                await asyncio.to_thread(self.target.health, started, timeout)
            except TargetError as exc:
                await asyncio.to_thread(self.target.abandon, started)
                await self.fail(request, delivery, str(exc))
                return
            closed = await self._gates(request, delivery, started, gates)
            if closed:
                await asyncio.to_thread(self.target.abandon, started)
                await self.fail(request, delivery, closed)
                return
            await asyncio.to_thread(self.target.switch, request.model, request.env, started)
            await asyncio.to_thread(
                functools.partial(d.registry.set_live, request.model, request.env,
                                  request.version, by=request.requested_by,
                                  why=f"{request.action} #{request.id}")
            )  # fmt: skip
            await asyncio.to_thread(d.requests.move, request_id, RUNNING, VERIFYING)
            await run.record(switched_at=time.time())
        switched_at = float(run.progress["switched_at"])
        problem = await self._smoke(request, started)
        phase = CHECK_FAILED if problem else await self._analyse(delivery, checks)
        if phase == SUCCESSFUL:
            await self.succeed(request, delivery)
        elif phase == INCONCLUSIVE or (self.settings.rollback == "ask" and before is not None):
            await self.ask(request, delivery, "inconclusive" if phase == INCONCLUSIVE else "failed",
                           problem or f"verification {phase.lower()}")  # fmt: skip
        else:
            await self.roll_back(request, delivery, problem or f"verification {phase.lower()}")
        if not problem and checks:
            await self._chart(request, delivery, switched_at, checks)

    async def _start(self, run: JobRun, request: DeployRequest) -> Started:
        known = run.progress.get("started")
        if known:
            started = Started.from_dict(known)
            if await asyncio.to_thread(self.target.running, started):
                return started
        started = await asyncio.to_thread(self.target.start, request.plan)
        await run.record(started=started.as_dict())
        return started

    async def _gates(self, request: DeployRequest, delivery: Delivery, started: Started,
                     gates: list[EvalGate]) -> str | None:  # fmt: skip
        """The eval gates, run against the new version before it gets traffic: why one is
        closed (None: all open), each said in the thread."""
        from evals.runner import RunOptions, run_suite
        from evals.store import EvalStore

        store = EvalStore(self.deploys.services.store.engine)
        for gate in gates:
            options = RunOptions(split=gate.split, model=started.upstream,
                                 requested_by=request.requested_by)  # fmt: skip
            run = await asyncio.to_thread(run_suite, gate.suite, store, options)
            value = (run.metrics.get(gate.metric) or {}).get("value")
            closed = (f"eval {gate.name}: run #{run.id} {run.status} ({run.error})"
                      if run.status in ("error", "invalid") else gate.verdict(value))  # fmt: skip
            shown = "—" if value is None else f"{value:.3f}"
            await delivery.post_once(
                f"gate:{gate.name}", f"eval gate *{gate.name}*: {gate.suite} suite run #{run.id} "
                f"on {request.version}: {gate.metric} = {shown} → {'closed' if closed else 'open'}",
            )  # fmt: skip
            if closed:
                return f"{closed}; the new version got no traffic"
        return None

    async def _smoke(self, request: DeployRequest, started: Started) -> str | None:
        """After the switch, a completion through the stable address is answered by the new
        version's served name."""
        url = f"{self.target.address(request.model, request.env)}/completions"
        body = {"model": started.served_name, "prompt": "Hello", "max_tokens": 1}
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                response = await client.post(url, json=body)
            served = response.json().get("model")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return f"the stable address did not answer ({type(exc).__name__})"
        if response.status_code != 200 or served != started.served_name:
            return f"the stable address answered {response.status_code} from {served!r}"
        return None

    async def _analyse(self, delivery: Delivery, checks: list[Check]) -> str:
        """The checks of the model and environment, each measurement said in the thread."""
        if not checks:
            return SUCCESSFUL
        loop = asyncio.get_running_loop()
        settings = self.deploys.services.settings.prometheus

        def measure(query: str) -> list[float]:
            with Prometheus(settings, query_timeout=settings.query_timeout) as prometheus:
                return [s.points[-1][1] for s in prometheus.instant(query) if s.points]

        conditions = {
            c.name: "; ".join(f"{word} if `{cond}`" for word, cond in (
                ("success", c.success_condition), ("failure", c.failure_condition)) if cond)
            for c in checks
        }  # fmt: skip

        def said(m: Measurement) -> None:
            n = sum(1 for x in analysis.measurements if x.check == m.check)
            value = m.error or (", ".join(f"{v:.4g}" for v in m.value or []) or "no data")
            judged = f" ({conditions[m.check]})" if conditions.get(m.check) else ""
            text = f"check *{m.check}* #{n}: `{m.query}` → {value}{judged}: {m.phase}"
            asyncio.run_coroutine_threadsafe(
                delivery.post_once(f"check:{m.check}:{n}", text), loop
            ).result(30)

        analysis = AnalysisRun(checks, measure, said)
        phase = await asyncio.to_thread(analysis.run)
        await delivery.post_once("analysis_ts", f"Verification: {phase}.")
        return phase

    async def _chart(self, request: DeployRequest, delivery: Delivery, switched_at: float,
                     checks: list[Check]) -> None:  # fmt: skip
        """The checked series with the switch marked (after the decision: a rollback never
        waits for a drawing)."""
        settings = self.deploys.services.settings.prometheus
        path = self.deploys.services.settings.data_dir / "charts" / f"deploy-{request.id}.png"
        title = f"{request.model} {request.version} in {request.env}"
        drawn = await asyncio.to_thread(checks_chart, settings, checks, switched_at, path, title)
        if drawn is not None:
            await delivery.upload_once("chart", "verification", file=str(drawn),
                                       filename=drawn.name)  # fmt: skip

    # -- endings -------------------------------------------------------------------------
    async def succeed(self, request: DeployRequest, delivery: Delivery, by: str = "") -> None:
        d = self.deploys
        assert request.id is not None
        await asyncio.to_thread(d.requests.move, request.id, VERIFYING, SUCCEEDED, verdict="")
        metrics.DEPLOYS.labels(request.env, request.action, "succeeded").inc()
        before = _live(request.handles.get("before"))
        await asyncio.to_thread(self.target.retire, request.model, request.env, before)
        await self._audit(request, "promoted" if by else "deployed", by)
        latest = await asyncio.to_thread(d.requests.get, request.id)
        assert latest is not None
        await d.show(latest)
        started = _live(latest.handles.get("started"))
        name = f" (served name `{started.served_name}`)" if started else ""
        await delivery.post_once(
            "done_ts",
            f"{request.model} {request.version} serves {request.env} at "
            f"{self.target.address(request.model, request.env)}{name}.",
        )

    async def roll_back(self, request: DeployRequest, delivery: Delivery, reason: str,
                        by: str = "") -> None:  # fmt: skip
        """The address goes back to the version that served before (the old server still
        runs); the new one is stopped or unloaded."""
        d = self.deploys
        before = _live(request.handles.get("before"))
        started = _live(request.handles.get("started"))
        if before is not None or started is not None:
            await asyncio.to_thread(self.target.restore, request.model, request.env, before)
        if request.from_version:
            await asyncio.to_thread(
                functools.partial(d.registry.set_live, request.model, request.env,
                                  request.from_version, by=by or "opsbot",
                                  why=f"#{request.id} rolled back: {reason[:200]}")
            )  # fmt: skip
        if started is not None:
            await asyncio.to_thread(self.target.abandon, started)
        await self.fail(request, delivery, reason, rolled_back=bool(request.from_version), by=by)

    async def ask(self, request: DeployRequest, delivery: Delivery, verdict: str,
                  reason: str) -> None:  # fmt: skip
        """Leave the new version serving and ask an approver: Promote / Roll back."""
        d = self.deploys
        assert request.id is not None
        await asyncio.to_thread(d.requests.update, request.id, verdict=verdict, note=reason[:2000])
        latest = await asyncio.to_thread(d.requests.get, request.id)
        assert latest is not None
        buttons = "Promote or Roll back" if verdict == "inconclusive" else "Roll back"
        await d.show(latest, note=f"Verification {verdict}: {reason[:1500]}. {buttons}?")
        await delivery.post_once(
            "ask_ts", f"Deploy #{request.id}: verification {verdict} ({reason[:500]}). "
            f"{request.version} serves {request.env} until an approver clicks {buttons} on "
            "the card.",
        )  # fmt: skip

    def _changed_since_approval(self, request: DeployRequest) -> str | None:
        """Why the approved plan is not what would run now, or None. The approval was of
        that plan: if the registry, what is live or the checks moved since, or a local
        file's bytes no longer have the digest the card showed, nothing runs."""
        plan = request.plan
        try:
            now = self.deploys.plan_now(request)
        except ToolError as exc:
            return f"the approved plan cannot run any more: {exc}"
        changed = sorted(k for k in set(plan) | set(now) if plan.get(k) != now.get(k))
        if changed:
            return (f"the plan changed after it was approved ({', '.join(changed)}); "
                    "nothing was deployed: ask again")  # fmt: skip
        path = Path(str(plan.get("uri") or ""))
        if plan.get("sha256") and path.is_absolute() and path.is_file():
            digest = file_digest(path)
            if digest != plan["sha256"]:
                return (f"{path.name} changed after the approval (sha256 {digest[:12]}…, "
                        f"approved {str(plan['sha256'])[:12]}…); nothing was deployed")  # fmt: skip
        return None

    async def fail(self, request: DeployRequest, delivery: Delivery, reason: str,
                   rolled_back: bool = False, by: str = "") -> None:  # fmt: skip
        d = self.deploys
        assert request.id is not None
        log.warning("deploy #%s failed: %s", request.id, reason.splitlines()[0][:200])
        # One compare-and-set to the end state (failed, or past it to rolled_back when the
        # address went back to the version that served before): no one reads a half-way state.
        await asyncio.to_thread(d.requests.move, request.id, (RUNNING, VERIFYING),
                                ROLLED_BACK if rolled_back else FAILED, note=reason[:2000],
                                verdict="")  # fmt: skip
        metrics.DEPLOYS.labels(request.env, request.action,
                               "rolled_back" if rolled_back else "failed").inc()  # fmt: skip
        await self._audit(request, "rolled back" if by else "deploy failed", by)
        latest = await asyncio.to_thread(d.requests.get, request.id)
        assert latest is not None
        await d.show(latest, note=f"Failed: {reason[:1500]}")
        old = (f"{request.from_version} serves again" if rolled_back else
               f"{request.from_version} keeps serving" if request.from_version else
               "nothing changed")  # fmt: skip
        if rolled_back and by:
            old += f" (rolled back by <@{by}>)"
        await delivery.post_once(
            "failed_ts", f"Deploy #{request.id} failed; {old}.\n```{reason[:2500]}```"
        )

    async def _audit(self, request: DeployRequest, action: str, by: str = "") -> None:
        await asyncio.to_thread(
            self.deploys.services.store.audit, source="deploy", user=by or "opsbot",
            action=action, text=f"#{request.id} {request.model} {request.version} in {request.env}",
            channel=request.channel,
        )  # fmt: skip

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        request_id = int(run.job.payload["request_id"])
        request = await asyncio.to_thread(self.deploys.requests.get, request_id)
        if request is not None and request.state in (RUNNING, VERIFYING):
            reason = f"{type(error).__name__}: {error}"
            await self.roll_back(request, self._delivery(run, request), reason)


class _Conclude:
    """Promote or Roll back, clicked by an approver on a verification that waits."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution

    async def run(self, run: JobRun) -> None:
        e, p = self.execution, run.job.payload
        request = await asyncio.to_thread(e.deploys.requests.get, int(p["request_id"]))
        if request is None or request.state != VERIFYING or not request.verdict:
            return  # finished already (an earlier attempt of this job)
        delivery = e._delivery(run, request)
        if p["decision"] == "promote":
            await e.succeed(request, delivery, by=p["user"])
        else:
            reason = (
                f"{request.note or 'verification ' + request.verdict}; rolled back by an approver"
            )
            await e.roll_back(request, delivery, reason, by=p["user"])

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        log.warning("deploy decision on #%s failed: %s", run.job.payload.get("request_id"),
                    type(error).__name__)  # fmt: skip
