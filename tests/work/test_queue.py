"""The job queue: recorded once, claimed once, one job per key at a time, leases that
expire, attempts that run out — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlmodel import Session

from bot.store import Store
from bot.work.queue import DONE, FAILED, QUEUED, RUNNING, Job, JobBase, JobQueue


def job(key: str = "k", queue: str = "answers", dedup: str | None = None, **kw: object) -> JobBase:
    return JobBase(queue=queue, kind="test", serial_key=key, dedup_key=dedup, **kw)  # type: ignore[arg-type]


def test_a_job_with_a_dedup_key_is_recorded_once(queue: JobQueue) -> None:
    first = queue.enqueue(job(dedup="event:Ev1", payload={"n": 1}))
    assert first is not None and first.state == QUEUED and first.payload == {"n": 1}
    assert queue.enqueue(job(dedup="event:Ev1", payload={"n": 2})) is None
    assert [j.payload for j in queue.jobs()] == [{"n": 1}]


def test_jobs_are_claimed_oldest_first_and_by_queue(queue: JobQueue) -> None:
    a = queue.enqueue(job("a"))
    b = queue.enqueue(job("b"))
    t = queue.enqueue(job("t", queue="triage"))
    assert a and b and t
    first, second = queue.claim("answers", "w1"), queue.claim("answers", "w2")
    assert first is not None and second is not None
    assert (first.id, second.id) == (a.id, b.id)
    assert first.state == RUNNING and first.owner == "w1" and first.attempts == 1
    assert queue.claim("answers", "w3") is None
    triage = queue.claim("triage", "w4")
    assert triage is not None and triage.id == t.id


def test_one_job_per_serial_key_runs_at_a_time(queue: JobQueue) -> None:
    first = queue.enqueue(job("thread-1"))
    second = queue.enqueue(job("thread-1"))
    other = queue.enqueue(job("thread-2"))
    assert first and second and other
    taken = queue.claim("answers", "w1")
    assert taken is not None and taken.id == first.id
    skipped = queue.claim("answers", "w2")
    assert skipped is not None and skipped.id == other.id  # thread-1 is busy
    assert queue.claim("answers", "w3") is None
    queue.finish(first.id, "w1")  # type: ignore[arg-type]
    later = queue.claim("answers", "w3")
    assert later is not None and later.id == second.id


def test_concurrent_claims_never_take_a_job_twice(store: Store) -> None:
    queue = JobQueue(store.engine)
    for i in range(40):
        queue.enqueue(job(f"key-{i % 10}"))
    taken: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (claimed := queue.claim("answers", name)) is not None:
            assert claimed.id is not None
            with lock:
                taken.append((claimed.id, name))
            queue.finish(claimed.id, name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for i, _ in taken]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
    assert all(j.state == DONE for j in queue.jobs())


def test_a_job_whose_lease_runs_out_is_taken_again_then_fails(store: Store) -> None:
    queue = JobQueue(store.engine, lease_s=0.2)
    recorded = queue.enqueue(job("k", max_attempts=2))
    assert recorded is not None and recorded.id is not None
    first = queue.claim("answers", "dead-replica")
    assert first is not None and first.attempts == 1
    assert queue.claim("answers", "alive") is None  # leased
    time.sleep(0.3)
    again = queue.claim("answers", "alive")
    assert again is not None and again.id == recorded.id and again.attempts == 2
    queue.record(recorded.id, status_ts="1.2")
    assert not queue.renew(recorded.id, "dead-replica")  # it is no longer the dead one's
    time.sleep(0.3)
    assert queue.claim("answers", "third") is None
    final = queue.get(recorded.id)
    assert final is not None and final.state == FAILED and "stopped" in (final.error or "")
    assert final.progress == {"status_ts": "1.2"}


def test_renewing_keeps_a_lease_and_finishing_needs_the_owner(store: Store) -> None:
    queue = JobQueue(store.engine, lease_s=0.3)
    recorded = queue.enqueue(job())
    assert recorded is not None and recorded.id is not None
    queue.claim("answers", "w1")
    for _ in range(4):
        time.sleep(0.1)
        assert queue.renew(recorded.id, "w1")
    assert queue.claim("answers", "w2") is None
    queue.finish(recorded.id, "intruder")
    assert queue.get(recorded.id).state == RUNNING  # type: ignore[union-attr]
    queue.finish(recorded.id, "w1")
    assert queue.get(recorded.id).state == DONE  # type: ignore[union-attr]


def test_retry_later_and_release(queue: JobQueue) -> None:
    recorded = queue.enqueue(job())
    assert recorded is not None and recorded.id is not None
    queue.claim("answers", "w1")
    queue.retry_later(recorded.id, "w1", delay_s=60, error="boom")
    assert queue.claim("answers", "w1") is None  # not before its time
    with Session(queue.engine) as session:
        row = session.get(Job, recorded.id)
        assert row is not None and row.error == "boom"
        row.run_after = row.run_after - timedelta(seconds=120)
        session.add(row)
        session.commit()
    again = queue.claim("answers", "w2")
    assert again is not None and again.attempts == 2
    queue.release(recorded.id, "w2")
    released = queue.get(recorded.id)
    assert released is not None and released.state == QUEUED and released.attempts == 1


def test_depth_counts_unfinished_jobs_per_queue(queue: JobQueue) -> None:
    for key in ("a", "b", "c"):
        queue.enqueue(job(key))
    queue.enqueue(job("t", queue="triage"))
    queue.claim("answers", "w1")
    depth = queue.depth()
    assert depth[("answers", "queued")][0] == 2
    assert depth[("answers", "running")][0] == 1
    assert depth[("triage", "queued")][0] == 1
    assert depth[("answers", "queued")][1] >= 0


def test_rate_budgets_are_shared_by_stores_on_one_database(db_url: str) -> None:
    one, two = Store(db_url), Store(db_url)  # two replicas
    assert one.hit("prometheus:U1", limit=2, window_s=60) is None
    assert two.hit("prometheus:U1", limit=2, window_s=60) is None
    wait = one.hit("prometheus:U1", limit=2, window_s=60)
    assert wait is not None and 0 < wait <= 60
    assert two.hit("prometheus:U2", limit=2, window_s=60) is None  # budgets are per person


def test_replicas_on_one_database_never_run_two_jobs_of_a_key_at_once(db_url: str) -> None:
    """Each 'replica' has its own engine (own connections): the database itself keeps one
    running job per serial key."""
    replicas = [JobQueue(Store(db_url).engine) for _ in range(3)]
    for _ in range(12):
        replicas[0].enqueue(job("thread-1"))
    running: list[int] = []
    overlaps: list[int] = []
    lock = threading.Lock()

    def replica(queue: JobQueue, name: str) -> None:
        while any(j.state != DONE for j in queue.jobs()):
            claimed = queue.claim("answers", name)
            if claimed is None:  # the key is busy on another replica
                time.sleep(0.005)
                continue
            assert claimed.id is not None
            with lock:
                running.append(claimed.id)
                if len(running) > 1:
                    overlaps.append(claimed.id)
            time.sleep(0.01)
            with lock:
                running.remove(claimed.id)
            queue.finish(claimed.id, name)

    threads = [threading.Thread(target=replica, args=(q, f"r{i}")) for i, q in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert [j.state for j in replicas[1].jobs()] == [DONE] * 12


def test_both_postgres_url_forms_reach_the_same_database(pg_database: str) -> None:
    from bot.db import libpq_url, sqlalchemy_url

    plain = pg_database
    assert plain.startswith("postgresql://")
    with_driver = plain.replace("postgresql://", "postgresql+psycopg://")
    assert sqlalchemy_url(plain) == with_driver and libpq_url(with_driver) == plain
    Store(plain).audit(source="cli", user="ana", action="chat", text="one")
    assert [r.text for r in Store(with_driver).audit_log()] == ["one"]


def test_the_longest_keys_intake_can_make_fit_the_columns(queue: JobQueue, store: Store) -> None:
    """Postgres enforces column lengths: the longest ids intake accepts still fit."""
    from bot.slack.intake import MessageEvent, SlashCommand
    from bot.store import IncidentBase, conversation_id, key_hash

    cmd = SlashCommand(user_id="U" * 64, channel_id="C" * 64, trigger_id="T" * 100)
    event = MessageEvent(channel="C" * 64, ts="1" * 12 + "." + "2" * 9, user="U" * 64)
    assert queue.enqueue(
        job(conversation_id(event.channel, event.ts), dedup=f"trigger:{cmd.trigger_id}")
    )
    assert queue.enqueue(job(f"alert:{key_hash('g' * 5000)[:40]}", dedup="event:" + "E" * 100))
    store.start_conversation(channel=event.channel, thread_ts=event.ts, user=event.user)
    long_key = '{}:{x="' + "y" * 5000 + '"}'
    base = IncidentBase(group_key=long_key[:1024], channel="C" * 64, thread_ts=event.ts)
    opened = store.open_incident(base, group_key=long_key)
    found = store.incident(group_key=long_key)
    assert found is not None and found.id == opened.id
