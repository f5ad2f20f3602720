"""The one wiring module: builds the shared services from settings.

Arrows point one way: intake (``bot/slack/intake.py``, ``bot/alertmanager/webhook.py``)
records jobs in the queue; workers (``bot/work/``) take them, ask the agent and hand the
results to the Slack renderers (``bot/slack/delivery.py``). Intake needs only the store
and the queue, so requests are taken from the first second; the agent (index, model,
checkpointer) warms up in the background and the workers start once it is ready.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.agent.service import open_agent
from bot.settings import Settings
from bot.store import Store
from bot.work.queue import ANSWERS, TRIAGE, JobBase, JobQueue
from bot.work.workers import WorkerPool, replica_id

if TYPE_CHECKING:
    from bot.agent.service import Agent
    from bot.deploys.service import Deploys

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Threads that record intake's jobs (each holds one database call at a time).
INTAKE_THREADS = 4
#: Seconds between looks at the eval schedules (a due run starts within this).
SCHEDULE_POLL_S = 5.0


@dataclass
class Services:
    settings: Settings
    store: Store
    queue: JobQueue
    client: AsyncWebClient
    owner: str = field(default_factory=replica_id)
    agent: Agent | None = None
    deploys: Deploys | None = None
    pools: dict[str, WorkerPool] = field(default_factory=dict)
    startup_error: str | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _intake: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="intake")
    )
    _starting: asyncio.Task[None] | None = None
    _schedules: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """The agent is up and workers take jobs."""
        return self.agent is not None and bool(self.pools)

    async def enqueue(self, job: JobBase) -> bool:
        """Record a job (False: a duplicate of one recorded before) and wake a worker."""
        recorded = await self.on_intake(self.queue.enqueue, job)
        if recorded is not None and job.queue in self.pools:
            self.pools[job.queue].wake()
        return recorded is not None

    async def on_intake(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking database call of the request path in intake's own threads, so
        that acks never queue behind the workers' tools in the default executor."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._intake, call)

    def start(self) -> None:
        """Warm the agent up and start the workers, in the background."""
        self._starting = asyncio.create_task(self._start())

    async def _start(self) -> None:
        from bot.work.answering import AnswerJobs
        from bot.work.triage import TriageJobs

        settings = self.settings
        try:
            self.agent = await self._stack.enter_async_context(
                open_agent(settings, self.store, pool_size=settings.max_concurrent_answers + 2)
            )
        except Exception as exc:  # reported by /readyz; the process stays up for /livez
            log.exception("the agent could not start")
            self.startup_error = f"{type(exc).__name__}: {exc}"
            return
        from bot.deploys.execute import DEPLOYS
        from bot.deploys.service import Deploys
        from bot.work.evals import EvalJobs
        from bot.work.lookups import LookupJobs
        from bot.work.queue import EVALS
        from evals.store import EvalStore

        self.deploys = Deploys(self)
        self.agent.context.tools.deploys = self.deploys
        self.agent.context.tools.evals = EvalStore(self.store.engine)
        answers = AnswerJobs(self)
        triage = TriageJobs(self, answers)
        handlers = {**answers.handlers(), **self.deploys.handlers(), **LookupJobs(self).handlers()}
        self.pools = {
            ANSWERS: WorkerPool(self.queue, ANSWERS, handlers,
                                size=settings.max_concurrent_answers, owner=self.owner,
                                poll_s=settings.workers.poll),
            DEPLOYS: WorkerPool(self.queue, DEPLOYS, self.deploys.execution_handlers(), size=1,
                                owner=self.owner, poll_s=settings.workers.poll),
            EVALS: WorkerPool(self.queue, EVALS, EvalJobs(self).handlers(), size=1,
                              owner=self.owner, poll_s=settings.workers.poll),
            TRIAGE: WorkerPool(self.queue, TRIAGE, triage.handlers(),
                               size=settings.workers.triage, owner=self.owner,
                               poll_s=settings.workers.poll),
        }  # fmt: skip
        for pool in self.pools.values():
            pool.start()
        from bot.work.evals import schedule_loop

        self._schedules = asyncio.create_task(schedule_loop(self, SCHEDULE_POLL_S))
        log.info("ready: %s", ", ".join(f"{p.size} {n} worker(s)" for n, p in self.pools.items()))

    async def stop(self) -> None:
        """Stop intake's workers: running jobs get the grace period, the rest stay queued."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._schedules is not None:
            self._schedules.cancel()
            await asyncio.gather(self._schedules, return_exceptions=True)
            self._schedules = None
        grace = self.settings.workers.shutdown_grace
        await asyncio.gather(*(pool.stop(grace) for pool in self.pools.values()))
        self.pools = {}
        await self._stack.aclose()
        self.agent = None


def slack_client(settings: Settings) -> AsyncWebClient:
    settings.require_slack()
    assert settings.slack.bot_token is not None
    client = AsyncWebClient(
        token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.api_url
    )
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return client


def build_services(settings: Settings, store: Store | None = None) -> Services:
    store = store or Store(settings.database_url, pool_size=settings.max_concurrent_answers + 4)
    return Services(
        settings=settings,
        store=store,
        queue=JobQueue(store.engine, lease_s=settings.workers.lease),
        client=slack_client(settings),
    )
