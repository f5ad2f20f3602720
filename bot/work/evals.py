"""Eval runs asked for in Slack (``/ops eval run SUITE [heldout]``): a durable job on a pool
of its own (a long suite holds no answer slot), its progress updated in the channel, the
report at the end; ``/ops eval report SUITE`` and ``/ops eval list`` answer at once."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from bot.slack.delivery import Delivery
from bot.work.queue import JobBase
from bot.work.workers import Handler, JobRun
from evals.cases import CaseFileError
from evals.store import EvalStore
from tools.base import ToolError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
EVALS = "evals"
USAGE = "`/ops eval run SUITE [dev|heldout]`, `/ops eval report SUITE` or `/ops eval list`"
PROGRESS_EVERY_S = 3.0


def eval_job(payload: dict[str, Any], dedup_key: str | None) -> JobBase:
    return JobBase(queue=EVALS, kind="eval_run", serial_key=f"eval:{payload['suite']}",
                   dedup_key=dedup_key, payload=payload, max_attempts=2)  # fmt: skip


def parse_run(text: str) -> tuple[str, str]:
    """``run SUITE [dev|heldout]`` → (suite, split); ToolError with the usage otherwise."""
    words = text.split()
    if len(words) < 2 or words[0] != "run" or (len(words) > 2 and words[2] not in
                                               ("dev", "heldout")):  # fmt: skip
        raise ToolError(f"Usage: {USAGE}")
    return words[1], words[2] if len(words) > 2 else "dev"


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
    raise ToolError(f"Usage: {USAGE}")


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
                             prometheus_url=self.services.settings.prometheus.url)  # fmt: skip
        try:
            result = await asyncio.to_thread(run_suite, p["suite"], self.store, options)
            text = f"```{report_text(result)}```"
        except CaseFileError as exc:
            text = f"The eval could not run: {exc}"
        await self.services.client.chat_update(channel=p["channel"], ts=status, text=text[:3900])

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        p = run.job.payload
        await self.services.client.chat_postEphemeral(
            channel=p["channel"], user=p["user"],
            text=f"The eval run of {p['suite']} failed ({type(error).__name__}).",
        )  # fmt: skip
