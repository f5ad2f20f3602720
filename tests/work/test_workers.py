"""Worker pools: jobs run, failures are retried then reported, shutdown lets running jobs
finish within the grace period and gives the rest back."""

from __future__ import annotations

import asyncio

from bot.work.queue import DONE, FAILED, QUEUED, JobBase, JobQueue
from bot.work.workers import JobRun, WorkerPool


class Recorder:
    """A handler that records what it ran; ``fail`` times it raises first; ``hold`` s it takes."""

    def __init__(self, fail: int = 0, hold: float = 0.0) -> None:
        self.fail, self.hold = fail, hold
        self.runs: list[tuple[int, int]] = []
        self.gave_up: list[int] = []

    async def run(self, run: JobRun) -> None:
        self.runs.append((run.id, run.job.attempts))
        await run.record(seen=run.progress.get("seen", 0) + 1)
        if self.hold:
            await asyncio.sleep(self.hold)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("boom")

    async def give_up(self, run: JobRun, error: BaseException) -> None:
        self.gave_up.append(run.id)


async def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def recorded(queue: JobQueue, key: str, **kw: object) -> int:
    job = queue.enqueue(JobBase(queue="answers", kind="test", serial_key=key, **kw))  # type: ignore[arg-type]
    assert job is not None and job.id is not None
    return job.id


async def test_a_pool_runs_jobs_and_marks_them_done(queue: JobQueue) -> None:
    handler = Recorder()
    pool = WorkerPool(queue, "answers", {"test": handler}, size=2, owner="r1", poll_s=0.05)
    pool.start()
    ids = [recorded(queue, f"k{i}") for i in range(5)]
    pool.wake()
    await until(lambda: all(queue.get(i).state == DONE for i in ids))  # type: ignore[union-attr]
    await pool.stop(1)
    assert sorted(i for i, _ in handler.runs) == ids


async def test_a_failing_job_is_retried_then_given_up(queue: JobQueue, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("bot.work.workers.RETRY_DELAYS", (0.0,))
    handler = Recorder(fail=5)
    pool = WorkerPool(queue, "answers", {"test": handler}, size=1, owner="r1", poll_s=0.05)
    pool.start()
    job_id = recorded(queue, "k", max_attempts=3)
    await until(lambda: queue.get(job_id).state == FAILED)  # type: ignore[union-attr]
    await pool.stop(1)
    assert [a for _, a in handler.runs] == [1, 2, 3]
    assert handler.gave_up == [job_id]
    assert queue.get(job_id).progress == {"seen": 3}  # type: ignore[union-attr]


async def test_a_job_that_fails_once_succeeds_on_retry(queue: JobQueue, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("bot.work.workers.RETRY_DELAYS", (0.0,))
    handler = Recorder(fail=1)
    pool = WorkerPool(queue, "answers", {"test": handler}, size=1, owner="r1", poll_s=0.05)
    pool.start()
    job_id = recorded(queue, "k")
    await until(lambda: queue.get(job_id).state == DONE)  # type: ignore[union-attr]
    await pool.stop(1)
    assert handler.gave_up == [] and len(handler.runs) == 2


async def test_stop_lets_running_jobs_finish_within_the_grace(queue: JobQueue) -> None:
    handler = Recorder(hold=0.5)
    pool = WorkerPool(queue, "answers", {"test": handler}, size=2, owner="r1", poll_s=0.05)
    pool.start()
    ids = [recorded(queue, f"k{i}") for i in range(4)]
    pool.wake()
    await until(lambda: pool.busy == 2)
    await pool.stop(grace_s=5)
    states = [queue.get(i).state for i in ids]  # type: ignore[union-attr]
    assert states.count(DONE) == 2 and states.count(QUEUED) == 2  # the rest wait, untouched


async def test_stop_gives_back_jobs_that_outlast_the_grace(queue: JobQueue) -> None:
    handler = Recorder(hold=30)
    pool = WorkerPool(queue, "answers", {"test": handler}, size=1, owner="r1", poll_s=0.05)
    pool.start()
    job_id = recorded(queue, "k")
    pool.wake()
    await until(lambda: pool.busy == 1)
    await pool.stop(grace_s=0.2)
    job = queue.get(job_id)
    assert job is not None and job.state == QUEUED and job.attempts == 0 and job.owner is None
    assert job.progress == {"seen": 1}  # what it did is kept for the next attempt


async def test_a_job_whose_lease_another_worker_took_stops_running_here(
    queue: JobQueue,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """This worker stalled past its lease and another took the job: the renewal finds it is
    no longer the owner and stops the handler, so the job never runs in two places at once;
    the worker goes on with the next job."""
    handler = Recorder(hold=30)
    pool = WorkerPool(queue, "answers", {"test": handler}, size=1, owner="r1", poll_s=0.05)
    monkeypatch.setattr(queue, "lease", __import__("datetime").timedelta(seconds=0.3))
    pool.start()
    stalled = recorded(queue, "k1")
    pool.wake()
    await until(lambda: pool.busy == 1)
    monkeypatch.setattr(queue, "renew", lambda job_id, owner: False)  # another owner now
    await until(lambda: pool.busy == 0, timeout=5)  # stopped long before its 30 s hold
    assert queue.get(stalled).state != DONE  # type: ignore[union-attr]  # not finished here
    handler.hold = 0
    monkeypatch.undo()
    nxt = recorded(queue, "k2")
    pool.wake()
    await until(lambda: queue.get(nxt).state == DONE)  # type: ignore[union-attr]
    await pool.stop(1)
    assert handler.runs[0][0] == stalled and nxt in [i for i, _ in handler.runs]


async def test_an_alert_storm_does_not_starve_people_nor_the_reverse(queue: JobQueue) -> None:
    """Triage and answers are pools of their own on one job table: a backlog of slow
    triages (recorded first) does not delay a person's answer, and a backlog of answers
    does not delay a triage."""
    slow, fast = Recorder(hold=1.0), Recorder()
    triage = WorkerPool(queue, "triage", {"test": slow}, size=1, owner="r1", poll_s=0.05)
    answers = WorkerPool(queue, "answers", {"test": fast}, size=1, owner="r1", poll_s=0.05)
    triage.start()
    answers.start()
    storm = [queue.enqueue(JobBase(queue="triage", kind="test", serial_key=f"alert{i}"))
             for i in range(10)]  # fmt: skip
    triage.wake()
    await until(lambda: triage.busy == 1)
    person = recorded(queue, "person")
    answers.wake()
    began = asyncio.get_running_loop().time()
    await until(lambda: queue.get(person).state == DONE, timeout=3)  # type: ignore[union-attr]
    assert asyncio.get_running_loop().time() - began < 0.5
    assert sum(queue.get(j.id).state == DONE for j in storm if j and j.id) <= 1  # type: ignore[union-attr]
    # the reverse: answers held up, a triage recorded after them still runs at once
    fast.hold, slow.hold = 1.0, 0.0
    backlog = [recorded(queue, f"q{i}") for i in range(5)]
    answers.wake()
    await until(lambda: answers.busy == 1)
    alert = queue.enqueue(JobBase(queue="triage", kind="test", serial_key="late-alert"))
    assert alert is not None and alert.id is not None
    triage.wake()
    await until(lambda: queue.get(alert.id).state == DONE, timeout=15)  # type: ignore[union-attr, arg-type]
    assert sum(queue.get(i).state == DONE for i in backlog) <= 2  # type: ignore[union-attr]
    await triage.stop(0.1)
    await answers.stop(0.1)
