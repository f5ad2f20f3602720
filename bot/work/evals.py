"""Eval runs asked for in Slack (``/ops eval run SUITE [heldout]``): a durable job on a pool
of its own (a long suite holds no answer slot), its progress updated in the channel, the
report at the end; ``/ops eval report SUITE`` and ``/ops eval list`` answer at once."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.slack.commands import EVAL_USAGE
from bot.slack.delivery import Delivery
from bot.work.jobs import eval_job
from bot.work.workers import Handler, JobRun
from evals.cases import CaseFileError
from evals.judge import judge_from_settings
from evals.store import EvalStore
from tools.base import ToolError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 3.0


def answer(store: EvalStore, text: str) -> str:
    """``report SUITE`` and ``list``, from the stored runs (no model)."""
    from bot.eval_cli import report_text
    from evals.suite import list_suites

    words = text.split()
    if words[:1] == ["list"]:
        return "\n".join(f"*{s.name}* ({s.config.kind}): {s.config.description.split('.')[0]}."
                         for s in list_suites())  # fmt: skip
    if words[:1] == ["report"] and len(words) == 2:
        runs = store.runs(words[1], limit=1)
        if not runs:
            return f"No eval run of {words[1]} yet: `/ops eval run {words[1]}`."
        return f"```{report_text(runs[0])}```"
    raise ToolError(f"Usage: {EVAL_USAGE}")


def should_post(notify_on: str, result: Any, previous: Any) -> bool:
    """always; failure: anything but passed; change: the status moved, or a metric moved
    significantly from the baseline."""
    if notify_on == "always":
        return True
    if notify_on == "failure":
        return bool(result.status != "passed")
    moved = any(c.get("significant") for c in (result.comparison or {}).get("metrics", {}).values())
    return previous is None or previous.status != result.status or moved


def parse_channel(text: str) -> str | None:
    """``<#C123|ops>`` or ``C123`` → the id; ``#ops`` → the name (resolved by the caller)."""
    escaped = re.fullmatch(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>", text)
    if escaped:
        return escaped.group(1)
    if re.fullmatch(r"[CGD][A-Z0-9]{2,}", text):
        return text
    return text if text.startswith("#") else None


async def resolve_channel(client: Any, text: str) -> str:
    """A channel id the bot is in, from the words; ToolError naming what is wrong."""
    found = parse_channel(text)
    if found is None:
        raise ToolError(f"{text!r} is not a channel: give it as #name or a channel link")
    if not found.startswith("#"):
        return found
    cursor = None
    while True:
        page = await client.conversations_list(types="public_channel,private_channel",
                                               limit=200, cursor=cursor)  # fmt: skip
        for channel in page.get("channels", []):
            if channel.get("name") == found[1:]:
                if not channel.get("is_member"):
                    raise ToolError(f"I am not in {found}: invite me there first")
                return str(channel["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            raise ToolError(f"there is no channel {found} that I can see")


SCHEDULE = re.compile(
    r'^schedule\s+(\S+)\s+"([^"]+)"(?:\s+(\S+))?(?:\s+(always|failure|change))?\s*$'
)


async def command(services: Services, text: str, user: str, channel: str) -> str:
    """The `/ops eval` lookups: report, list, schedule, schedules, unschedule."""
    from evals.schedule import ScheduleError, Schedules
    from evals.suite import load_suite

    schedules = Schedules(services.store.engine)
    words = text.split()
    if words[:1] == ["schedule"]:
        found = SCHEDULE.match(text.strip())
        if found is None:
            raise ToolError(f"Usage: {EVAL_USAGE}")
        suite, cron, where, notify = found.groups()
        try:
            load_suite(suite)
        except CaseFileError as exc:
            raise ToolError(str(exc)) from None
        target = await resolve_channel(services.client, where) if where else channel
        zone = services.settings.evals.timezone
        try:
            row = await asyncio.to_thread(schedules.add, suite, cron, target, by=user,
                                          timezone=zone, notify_on=notify or "always")  # fmt: skip
        except ScheduleError as exc:
            raise ToolError(str(exc)) from None
        await asyncio.to_thread(lambda: services.store.audit(
            source="eval", user=user, action="schedule",
            text=f"#{row.id} {suite} {cron} in <#{target}>"))  # fmt: skip
        return (f"Schedule #{row.id}: {suite} at `{cron}` ({zone}) in <#{target}>, "
                f"next {row.next_at:%Y-%m-%d %H:%M} UTC, report {row.notify_on}.")  # fmt: skip
    if words[:1] == ["schedules"]:
        rows = await asyncio.to_thread(schedules.all)
        return "\n".join(
            f"#{r.id} {r.suite} ({r.split}) `{r.cron}` {r.timezone} in <#{r.channel}>, "
            f"next {r.next_at:%Y-%m-%d %H:%M} UTC, report {r.notify_on}" for r in rows
        ) or "No eval schedules."  # fmt: skip
    if words[:1] == ["unschedule"]:
        if len(words) != 2 or not words[1].lstrip("#").isdigit():
            raise ToolError(f"Usage: {EVAL_USAGE}")
        if not await asyncio.to_thread(schedules.remove, int(words[1].lstrip("#"))):
            raise ToolError(f"there is no eval schedule {words[1]}")
        return f"Schedule {words[1]} removed."
    return await asyncio.to_thread(answer, EvalStore(services.store.engine), text)


class EvalJobs:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = EvalStore(services.store.engine)

    def handlers(self) -> dict[str, Handler]:
        return {"eval_run": self}

    async def run(self, run: JobRun) -> None:
        from bot.eval_cli import report_text
        from evals.runner import RunOptions, run_suite

        p = run.job.payload
        if p.get("schedule_id"):
            await self.scheduled(run)
            return
        delivery = Delivery(self.services.client, run, p["channel"], None)
        status = await delivery.post_once(
            "status", f"Eval run of *{p['suite']}* ({p['split']}) for <@{p['user']}>: starting…"
        )
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last[0] < PROGRESS_EVERY_S and done < total:
                return
            last[0] = time.monotonic()
            text = f"Eval run of *{p['suite']}* ({p['split']}): {done}/{total} cases…"
            asyncio.run_coroutine_threadsafe(
                self.services.client.chat_update(channel=p["channel"], ts=status, text=text), loop
            ).result(30)

        options = RunOptions(split=p["split"], requested_by=p["user"], progress=progress,
                             model=p.get("model"), settings=self.services.settings,
                             judge=judge_from_settings(self.services.settings),
                             registry=self.services.deploys.registry
                             if self.services.deploys else None)  # fmt: skip
        try:
            result = await asyncio.to_thread(run_suite, p["suite"], self.store, options)
            metrics.EVAL_RUNS.labels(result.suite, result.status).inc()
            text = f"```{report_text(result)}```"
        except CaseFileError as exc:
            text = f"The eval could not run: {exc}"
        await self.services.client.chat_update(channel=p["channel"], ts=status, text=text[:3900])

    async def scheduled(self, run: JobRun) -> None:
        """A schedule's run: the report goes to its channel when ``notify_on`` says so."""
        from evals.runner import RunOptions, run_suite
        from evals.schedule import Schedules

        p = run.job.payload
        schedules = Schedules(self.services.store.engine)
        schedule = await asyncio.to_thread(schedules.get, int(p["schedule_id"]))
        if schedule is None:
            return
        previous = self.store.get(schedule.last_run_id) if schedule.last_run_id else None
        result_id = run.progress.get("run_id")
        if result_id is None:
            options = RunOptions(split=schedule.split,  # type: ignore[arg-type]
                                 requested_by=schedule.created_by,
                                 settings=self.services.settings,
                                 judge=judge_from_settings(self.services.settings))  # fmt: skip
            result = await asyncio.to_thread(run_suite, schedule.suite, self.store, options)
            metrics.EVAL_RUNS.labels(result.suite, result.status).inc()
            await run.record(run_id=result.id)
            assert result.id is not None
            await asyncio.to_thread(schedules.ran, int(p["schedule_id"]), result.id)
        else:
            found = await asyncio.to_thread(self.store.get, int(result_id))
            assert found is not None
            result = found
        if should_post(schedule.notify_on, result, previous):
            await self.post_report(run, schedule.channel, result)

    async def post_report(self, run: JobRun, channel: str, result: Any) -> None:
        from bot.slack.eval_report import report_blocks, trend_charts, worst_cases

        delivery = Delivery(self.services.client, run, channel, None, "report.")
        ts = await delivery.post_once("summary", f"eval {result.suite}: {result.status}",
                                      report_blocks(result))  # fmt: skip
        thread = Delivery(self.services.client, run, channel, ts, "report.")
        cases = await asyncio.to_thread(self.store.cases, result.id)
        await thread.post_once("worst", worst_cases(cases))
        runs = await asyncio.to_thread(self.store.runs, result.suite, 20)
        folder = self.services.settings.data_dir / "charts"
        drawn = await asyncio.to_thread(
            trend_charts, [r for r in runs if r.split == result.split], folder
        )
        for path in drawn:
            await thread.upload_once(f"trend:{path.stem}", f"{result.suite} trend",
                                     file=str(path), filename=path.name)  # fmt: skip

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        p = run.job.payload
        await self.services.client.chat_postEphemeral(
            channel=p["channel"], user=p["user"],
            text=f"The eval run of {p['suite']} failed ({type(error).__name__}).",
        )  # fmt: skip


async def fire_due(services: Services) -> int:
    """Record the eval job of every due schedule (one per schedule and due time, whichever
    replica records it) and move each to its next time; how many this call advanced."""
    from evals.schedule import Schedules, due_key

    schedules = Schedules(services.store.engine)
    fired = 0
    for schedule in await asyncio.to_thread(schedules.due):
        payload = {"suite": schedule.suite, "split": schedule.split, "user": schedule.created_by,
                   "channel": schedule.channel, "schedule_id": schedule.id}  # fmt: skip
        await services.enqueue(eval_job(payload, due_key(schedule)))
        fired += await asyncio.to_thread(schedules.advance, schedule)
    return fired


async def schedule_loop(services: Services, every_s: float) -> None:
    """Fire due schedules until cancelled (a database hiccup is logged and retried)."""
    while True:
        try:
            await fire_due(services)
        except Exception as exc:
            log.warning("eval schedules could not be read: %s", type(exc).__name__)
        await asyncio.sleep(every_s)
