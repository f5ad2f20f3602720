"""The approval flow: a paused write tool becomes a deploy request with a card; clicks are
checked against the approver policy and the plan they saw, move the request by
compare-and-set, and resume the agent's paused thread with the decision."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.db import as_utc
from bot.deploys.card import APPROVE, PROMOTE, ROLLBACK, card_blocks, card_text
from bot.deploys.policy import Approvers
from bot.deploys.requests import (
    APPROVED,
    CANCELLED,
    PENDING,
    REJECTED,
    SUCCEEDED,
    VERIFYING,
    BusyError,
    DeployRequest,
    Requests,
)
from bot.deploys.targets import make_target
from bot.deploys.targets.base import TargetError
from bot.slack import render
from bot.slack.delivery import Delivery
from bot.work.workers import Handler, JobRun
from tools.base import ToolError
from tools.deploy.analysis import Check, EvalGate, load_checks, local_default_checks
from tools.deploy.registry import open_registry

if TYPE_CHECKING:
    from bot.agent.service import PendingApproval
    from bot.services import Services

log = logging.getLogger(__name__)
WRITE_TOOLS = {"deploy_model": "deploy", "rollback_model": "rollback"}


class Deploys:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.deploy
        self.registry = open_registry(services.settings.mlflow.tracking_uri, services.store.engine)
        self.requests = Requests(services.store.engine)
        self.approvers = Approvers(self.settings, services.client)
        self.target = make_target(services.settings, services.store.engine)

    # -- plans ---------------------------------------------------------------------------
    def plan(self, action: str, model: str, version: str | None, env: str) -> dict[str, Any]:
        """What a request will do, from the registry now. Raises ToolError when it cannot."""
        live = self.registry.live_version(model, env)
        if action == "rollback":
            version = self.last_good(model, env, live)
        assert version is not None
        wanted = self.registry.get(model, version)
        if live == version:
            raise ToolError(f"{model} {version} is live in {env} already")
        old = self.registry.get(model, live).params if live else {}
        keys = sorted(set(old) | set(wanted.params))
        changes = {k: [old.get(k), wanted.params.get(k)] for k in keys
                   if old.get(k) != wanted.params.get(k)}  # fmt: skip
        gates, checks = self.verification(action, model, env, version)
        return {
            "action": action, "model": model, "env": env, "version": version,
            "from_version": live, "target": self.settings.target, "uri": wanted.uri,
            "sha256": wanted.sha256, "params": wanted.params, "param_changes": changes,
            "checks": [
                "health: the new version lists its served name and completes a prompt",
                *(f"before the switch: eval {g.name} ({g.suite} suite) "
                  + (f"{g.metric} ≥ {g.min}" if g.min is not None else f"{g.metric} ≤ {g.max}")
                  for g in gates),
                "after the switch: the stable address answers with the new served name",
                *(f"{c.name}: `{c.query}` ×{c.count} every {c.interval}"
                  + (f", success if {c.success_condition}" if c.success_condition else "")
                  + (f", failure if {c.failure_condition}" if c.failure_condition else "")
                  for c in checks),
            ],
        }  # fmt: skip

    def plan_now(self, request: DeployRequest) -> dict[str, Any]:
        """The plan ``request`` would have if it were asked now (ToolError when it cannot)."""
        version = request.version if request.action == "deploy" else None
        return self.plan(request.action, request.model, version, request.env)

    def env_of(self, args: dict[str, Any]) -> str:
        """The environment a write tool's call names, or the default one."""
        return str(args.get("env") or self.settings.default_env)

    def verification(self, action: str, model: str, env: str,
                     version: str) -> tuple[list[EvalGate], list[Check]]:  # fmt: skip
        """The eval gates (before the switch) and the checks (after it) of a deploy of the
        model to the environment, from one read of OPSBOT_DEPLOY_CHECKS; a rollback goes
        back to a version that passed, so it has neither (health only). Without a checks
        file the local target checks its router's metrics when Prometheus is set."""
        if action != "deploy":
            return [], []
        if self.settings.checks is None:
            if self.settings.target == "local" and self.services.settings.prometheus.url:
                return [], local_default_checks(model, env, version)
            return [], []
        checks = load_checks(self.settings.checks)
        return checks.gates_for(model, env), checks.for_(model, env)

    def last_good(self, model: str, env: str, live: str | None) -> str:
        """The version a rollback restores: what served before the live one succeeded."""
        for request in reversed(self.requests.history(model, env)):
            if request.state == SUCCEEDED and request.version == live and request.from_version:
                return request.from_version
        raise ToolError(f"{model} has no earlier good version in {env} to roll back to")

    # -- a paused thread becomes a request -------------------------------------------------
    async def open(
        self, run: JobRun, delivery: Delivery, status_ts: str, pending: PendingApproval,
        thread_id: str,
    ) -> None:  # fmt: skip
        """Post the approval card of the paused call (or say why it cannot be asked)."""
        call = next((c for c in pending.calls if c["tool"] in WRITE_TOOLS), None)
        if call is None:
            blocks = render.pending_blocks(pending.summary, pending.requested_by)
            await delivery.update(status_ts, "waiting for an approval", blocks)
            return
        request_id = delivery.done("deploy_request")
        if request_id is None:
            try:
                request = await asyncio.to_thread(self._create, call, pending, delivery, thread_id)
            except (ToolError, BusyError) as exc:
                await self._refused(run, delivery, status_ts, thread_id, str(exc))
                return
            assert request.id is not None
            await delivery.mark("deploy_request", request.id)
            request_id = request.id
        found = await asyncio.to_thread(self.requests.get, int(request_id))
        assert found is not None and found.id is not None
        request = found
        await self.show(request, card_ts=status_ts, delivery=delivery)
        await asyncio.to_thread(self.requests.update, found.id, card_ts=status_ts)
        await asyncio.to_thread(
            self.services.store.audit, source="deploy", user=request.requested_by,
            action=f"request {request.action}", channel=request.channel,
            text=f"#{request.id} {request.model} {request.from_version} -> {request.version} "
            f"in {request.env}", thread_ts=request.thread_ts,
        )  # fmt: skip

    def _create(self, call: dict[str, Any], pending: PendingApproval, delivery: Delivery,
                thread_id: str) -> DeployRequest:  # fmt: skip
        args = call["args"]
        action = WRITE_TOOLS[call["tool"]]
        env = self.env_of(args)
        plan = self.plan(action, args["model"], args.get("version"), env)
        try:
            self.target.preflight(plan)
        except TargetError as exc:
            raise ToolError(f"the {self.target.name} target cannot run it: {exc}") from None
        request = DeployRequest(
            action=action, model=args["model"], env=env, version=plan["version"],
            from_version=plan["from_version"], plan=plan, plan_hash="",
            requested_by=pending.requested_by, channel=delivery.channel,
            thread_ts=delivery.thread_ts or "", thread_id=thread_id,
        )  # fmt: skip
        return self.requests.create(request, ttl=timedelta(seconds=self.settings.ttl_seconds))

    async def _refused(self, run: JobRun, delivery: Delivery, status_ts: str, thread_id: str,
                       reason: str) -> None:  # fmt: skip
        """No request could be made: the thread is resumed with a refusal (never left paused)."""
        agent = self.services.agent
        assert agent is not None
        await agent.resume(thread_id, {"approved": False, "by": None, "reason": reason})
        text = f"No deploy request: {reason}"
        await delivery.update(status_ts, text, render.error_blocks(text))

    async def show(self, request: DeployRequest, *, card_ts: str | None = None,
                   delivery: Delivery | None = None, note: str = "") -> None:  # fmt: skip
        """Draw the card as the request stands now (in place)."""
        approvals = await asyncio.to_thread(self.requests.approvals, request)
        blocks = card_blocks(request, approvals, self.settings.required(request.env), note)
        ts = card_ts or request.card_ts
        try:
            await self.services.client.chat_update(
                channel=request.channel, ts=ts, text=card_text(request),
                blocks=render.as_dicts(blocks),
            )  # fmt: skip
        except SlackApiError as exc:
            log.warning("could not update the card of #%s: %s", request.id,
                        exc.response.get("error"))  # fmt: skip

    # -- clicks ----------------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {"deploy_click": _Click(self)}

    def execution_handlers(self) -> dict[str, Handler]:
        from bot.deploys.execute import Execution

        return Execution(self, self.target).handlers()

    def execute(self, request_id: int) -> str:
        """Called by an approved write tool (in a worker thread): the execution becomes a
        durable job of its own (recorded once, whatever retries)."""
        from bot.deploys.execute import execute_job

        request = self.requests.get(request_id)
        if request is None or request.state != APPROVED:
            raise ToolError(f"request #{request_id} is not approved")
        self.services.queue.enqueue(execute_job(request))
        return (
            f"Request #{request_id} is approved: deploying {request.model} {request.version} "
            f"to {request.env} on the {self.settings.target} target."
        )

    async def cancel(self, request_id: int, user: str) -> str:
        """A pending request withdrawn by its requester or an approver (pending →
        cancelled, by compare-and-set): the card loses its buttons and the paused thread
        resumes with the refusal."""
        request = await asyncio.to_thread(self.requests.get, request_id)
        if request is None:
            raise ToolError(f"there is no deploy request #{request_id}")
        if user != request.requested_by and await self.approvers.refusal(request.env, user, ""):
            raise ToolError(f"only <@{request.requested_by}> or an approver of {request.env} "
                            f"may cancel request #{request_id}")  # fmt: skip
        if not await asyncio.to_thread(self.requests.move, request_id, PENDING, CANCELLED):
            raise ToolError(f"request #{request_id} is {request.state}; only a pending one "
                            "can be cancelled")  # fmt: skip
        await asyncio.to_thread(
            self.services.store.audit, source="deploy", user=user, action="cancel",
            channel=request.channel, text=f"#{request_id} {request.model} {request.version} "
            f"in {request.env}",
        )  # fmt: skip
        latest = await asyncio.to_thread(self.requests.get, request_id)
        assert latest is not None
        await self.show(latest, note=f"Cancelled by <@{user}>.")
        agent = self.services.agent
        if agent is not None and request.thread_id:
            with contextlib.suppress(ValueError):  # not paused any more
                await agent.resume(request.thread_id, {"approved": False, "by": user,
                                                       "reason": "cancelled"})  # fmt: skip
        return f"Request #{request_id} is cancelled."


class _Click:
    def __init__(self, deploys: Deploys) -> None:
        self.deploys = deploys

    async def run(self, run: JobRun) -> None:
        d = self.deploys
        p = run.job.payload
        user, channel = p["user"], p["channel"]
        await asyncio.to_thread(d.requests.expire_due)
        request = await asyncio.to_thread(d.requests.get, int(p["request_id"]))
        if request is None or request.channel != channel:
            await self.tell(run, p, "That deploy request does not exist in this channel.")
            return
        assert request.id is not None
        if p["action_id"] in (PROMOTE, ROLLBACK):
            await self.conclude(run, p, request)
            return
        if request.state != PENDING:
            await self.recover(run, request)
            await self.tell(run, p, await self.decided_text(request))
            await d.show(request)
            return
        if p.get("plan") and p["plan"] != request.plan_hash[:16]:
            await self.tell(run, p, "The plan changed since this card was drawn; look at the "
                                    "updated card and click again.")  # fmt: skip
            await d.show(request)
            return
        fresh = await asyncio.to_thread(self._replan, request)
        if fresh is not None:
            await d.show(fresh, note="The plan changed (the registry or what is live moved): "
                                      "earlier approvals are void.")  # fmt: skip
            await self.tell(run, p, "The plan changed before your click counted; look at the "
                                    "updated card and click again.")  # fmt: skip
            return
        if refusal := await d.approvers.refusal(request.env, user, request.requested_by):
            await self.tell(run, p, f"You cannot decide this request: {refusal}.")
            return
        approve = p["action_id"] == APPROVE
        await asyncio.to_thread(
            d.requests.decide, request, user, "approve" if approve else "reject"
        )
        await asyncio.to_thread(
            d.services.store.audit, source="deploy", user=user,
            action="approve" if approve else "reject", channel=channel,
            text=f"#{request.id} {request.model} {request.version} in {request.env}",
        )  # fmt: skip
        if not approve:
            if await asyncio.to_thread(d.requests.move, request.id, PENDING, REJECTED):
                await self.resume(run, request, {"approved": False, "by": user})
        else:
            approvals = await asyncio.to_thread(d.requests.approvals, request)
            enough = len({a.user for a in approvals}) >= d.settings.required(request.env)
            if enough and await asyncio.to_thread(d.requests.move, request.id, PENDING, APPROVED):
                decision = {"approved": True, "by": user, "request_id": request.id}
                await self.resume(run, request, decision)
        latest = await asyncio.to_thread(d.requests.get, request.id)
        assert latest is not None
        await d.show(latest)

    async def conclude(self, run: JobRun, p: dict[str, Any], request: DeployRequest) -> None:
        """Promote / Roll back on a verification that waits for a person (policy applies;
        the first decision is the one: its job is recorded once per request)."""
        from bot.deploys.execute import conclude_job

        d = self.deploys
        if request.state != VERIFYING or not request.verdict:
            await self.tell(run, p, await self.decided_text(request))
            return
        if refusal := await d.approvers.refusal(request.env, p["user"], request.requested_by):
            await self.tell(run, p, f"You cannot decide this deploy: {refusal}.")
            return
        decision = "promote" if p["action_id"] == PROMOTE else "rollback"
        fresh = await asyncio.to_thread(
            d.services.queue.enqueue, conclude_job(request, decision, p["user"])
        )
        if not fresh:
            await self.tell(run, p, f"Deploy #{request.id} is being decided already.")
            return
        await asyncio.to_thread(
            d.services.store.audit, source="deploy", user=p["user"], action=decision,
            channel=request.channel, text=f"#{request.id} {request.model} {request.version} "
            f"in {request.env} after a verification {request.verdict}",
        )  # fmt: skip

    def _replan(self, request: DeployRequest) -> DeployRequest | None:
        """The request with its new plan when what it would do changed; else None."""
        assert request.id is not None
        try:
            plan = self.deploys.plan_now(request)
        except ToolError as exc:
            plan = {**request.plan, "invalid": str(exc)}
        if not self.deploys.requests.replan(request.id, plan):
            return None
        return self.deploys.requests.get(request.id)

    async def resume(self, run: JobRun, request: DeployRequest, decision: dict[str, Any]) -> None:
        """Continue the paused thread with the decision; its answer goes to the thread."""
        agent = self.deploys.services.agent
        assert agent is not None
        if run.progress.get("resumed"):
            return
        try:
            result = await agent.resume(request.thread_id, decision)
        except ValueError:  # not paused (resumed by an earlier attempt of this job)
            result = None
        await run.record(resumed=True)
        headline = getattr(result, "headline", None)
        if headline:
            delivery = Delivery(self.deploys.services.client, run, request.channel,
                                request.thread_ts)  # fmt: skip
            await delivery.post_once("resumed_ts", headline)

    async def recover(self, run: JobRun, request: DeployRequest) -> None:
        """An approved request whose thread is still paused on its call: the click that
        approved it died between the move and the resume. Its retry, or any later click on
        the card, resumes the thread with the approvals the database holds, so a request
        cannot stay approved with nothing running (it would hold its model and environment
        for good). A thread paused on another call is left alone."""
        agent = self.deploys.services.agent
        if request.state != APPROVED or not request.thread_id or agent is None:
            return
        waiting = await agent.paused(request.thread_id)
        calls = (waiting or {}).get("calls") or []
        if not any(WRITE_TOOLS.get(c.get("tool")) == request.action
                   and c.get("args", {}).get("model") == request.model
                   and self.deploys.env_of(c.get("args", {})) == request.env
                   for c in calls):  # fmt: skip
            return  # not paused, or paused on another call: this request's turn went on
        approvals = await asyncio.to_thread(self.deploys.requests.approvals, request)
        if approvals:
            log.warning("deploy request #%s was approved but its thread never resumed; "
                        "resuming it now", request.id)  # fmt: skip
            decision = {"approved": True, "by": approvals[-1].user, "request_id": request.id}
            await self.resume(run, request, decision)

    async def decided_text(self, request: DeployRequest) -> str:
        if request.state == "expired" or request.expired:
            return f"Request #{request.id} expired at {as_utc(request.expires_at):%H:%M} UTC."
        decisions = await asyncio.to_thread(self.deploys.requests.all_decisions, request.id or 0)
        who = ", ".join(f"<@{a.user}>" for a in decisions) or "nobody"
        when = as_utc(request.decided_at)
        at = f" at {when:%H:%M} UTC" if when else ""
        return f"Request #{request.id} is already {request.state} (decided by {who}{at})."

    async def tell(self, run: JobRun, payload: dict[str, Any], text: str) -> None:
        """An ephemeral answer to the person who clicked (once per job)."""
        if run.progress.get("told"):
            return
        try:
            await self.deploys.services.client.chat_postEphemeral(
                channel=payload["channel"], user=payload["user"], text=text
            )
        except SlackApiError as exc:
            log.warning("could not answer a click: %s", exc.response.get("error"))
        await run.record(told=True)

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        text = f"Your click could not be handled ({type(error).__name__}); try again."
        await self.tell(run, run.job.payload, text)
