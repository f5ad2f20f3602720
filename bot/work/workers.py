"""Workers: asyncio tasks that take jobs from one queue and run them.

A pool of ``size`` workers polls its queue (and is woken at once when this process
records a job). While a job runs its lease is renewed; when the handler raises, the job is
retried after a back-off until it is out of attempts, then the handler's ``give_up`` says
so to the people waiting. ``stop`` lets running jobs finish within a grace period and
gives the rest back to the queue, so another replica (or the next start) takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import metrics
from bot.work.queue import Job, JobQueue

log = logging.getLogger(__name__)
#: Seconds before the first, second, … retry of a job whose handler failed.
RETRY_DELAYS = (2.0, 10.0, 30.0, 60.0)


def replica_id() -> str:
    """This process, as job owners name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class JobRun:
    """One attempt at a job, as its handler sees it: what earlier attempts did, and a way
    to record each effect as soon as it happened."""

    job: Job
    queue: JobQueue
    progress: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = dict(self.job.progress)

    @property
    def id(self) -> int:
        assert self.job.id is not None
        return self.job.id

    @property
    def last_attempt(self) -> bool:
        return self.job.attempts >= self.job.max_attempts

    async def record(self, **progress: Any) -> None:
        """Save effects done (a Slack message's ts…) before doing the next one."""
        self.progress.update(progress)
        await asyncio.to_thread(self.queue.record, self.id, **progress)


class Handler(Protocol):
    async def run(self, run: JobRun) -> None: ...

    async def give_up(self, run: JobRun, error: BaseException) -> None: ...


class WorkerPool:
    def __init__(
        self,
        queue: JobQueue,
        name: str,
        handlers: dict[str, Handler],
        *,
        size: int,
        owner: str,
        poll_s: float = 0.5,
    ) -> None:
        self.queue, self.name, self.handlers = queue, name, handlers
        self.size, self.poll_s = size, poll_s
        self.owner = f"{owner}:{name}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[int, asyncio.Task[None]] = {}

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(i), name=f"{self.name}-{i}") for i in range(self.size)
        ]

    def wake(self) -> None:
        """A job was just recorded: look now rather than at the next poll."""
        self._wake.set()

    @property
    def busy(self) -> int:
        return len(self._running)

    async def stop(self, grace_s: float) -> None:
        """Take no new jobs; wait ``grace_s`` for those running, then give them back."""
        self._stopping = True
        self._wake.set()
        running = list(self._running.values())
        if running:
            log.info("%s: waiting up to %.0f s for %d job(s)", self.name, grace_s, len(running))
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self, index: int) -> None:
        owner = f"{self.owner}:{index}"
        while not self._stopping:
            try:
                job = await asyncio.to_thread(self.queue.claim, self.name, owner)
            except Exception:  # the database is away: wait, then try again
                log.warning("%s: could not claim a job", self.name, exc_info=True)
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
                continue
            assert job.id is not None
            task = asyncio.create_task(self._run(job, owner))
            self._running[job.id] = task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                raise
            finally:
                self._running.pop(job.id, None)

    async def _run(self, job: Job, owner: str) -> None:
        assert job.id is not None
        handler = self.handlers.get(job.kind)
        if handler is None:
            await asyncio.to_thread(
                self.queue.finish, job.id, owner, error=f"no handler for {job.kind}"
            )
            return
        run = JobRun(job, self.queue)
        work = asyncio.create_task(handler.run(run))
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._renew(job.id, owner, work, lost))
        started = time.monotonic()
        try:
            await work
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if lost.is_set() and (me is None or not me.cancelling()):
                # Another worker owns the job now (this one stalled past its lease): it
                # stops here, and the new owner carries on from the recorded progress.
                log.warning("%s: stopped job %s, whose lease another worker took",
                            self.name, job.id)  # fmt: skip
                metrics.JOBS.labels(self.name, job.kind, "lease_lost").inc()
                return
            # shutting down: the job goes back to the queue
            await asyncio.to_thread(self.queue.release, job.id, owner)
            log.info("%s: job %s given back to the queue", self.name, job.id)
            raise
        except Exception as exc:
            await self._failed(handler, run, owner, exc)
        else:
            await asyncio.to_thread(self.queue.finish, job.id, owner)
            metrics.JOBS.labels(self.name, job.kind, "done").inc()
        finally:
            heartbeat.cancel()
            log.debug("%s: job %s took %.2f s", self.name, job.id, time.monotonic() - started)

    async def _failed(self, handler: Handler, run: JobRun, owner: str, exc: Exception) -> None:
        job = run.job
        assert job.id is not None
        error = f"{type(exc).__name__}: {exc}"
        if not run.last_attempt:
            delay = RETRY_DELAYS[min(job.attempts - 1, len(RETRY_DELAYS) - 1)]
            log.warning("%s: job %s failed (%s); retrying in %.0f s", self.name, job.id,
                        type(exc).__name__, delay, exc_info=exc)  # fmt: skip
            await asyncio.to_thread(
                self.queue.retry_later, job.id, owner, delay_s=delay, error=error
            )
            metrics.JOBS.labels(self.name, job.kind, "retried").inc()
            return
        log.error("%s: job %s failed for good", self.name, job.id, exc_info=exc)
        try:
            await handler.give_up(run, exc)
        except Exception:
            log.exception("%s: could not report job %s's failure", self.name, job.id)
        await asyncio.to_thread(self.queue.finish, job.id, owner, error=error)
        metrics.JOBS.labels(self.name, job.kind, "failed").inc()

    async def _renew(self, job_id: int, owner: str, work: asyncio.Task[None],
                     lost: asyncio.Event) -> None:  # fmt: skip
        """Keep the job's lease while it runs; when the job is no longer this owner's, stop
        its work (``lost`` tells why it was cancelled), so it never runs twice at once."""
        period = max(0.05, self.queue.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            try:
                if not await asyncio.to_thread(self.queue.renew, job_id, owner):
                    log.warning("%s: lost the lease of job %s", self.name, job_id)
                    lost.set()
                    work.cancel()
                    return
            except Exception:
                log.warning("%s: could not renew job %s", self.name, job_id, exc_info=True)
