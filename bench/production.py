"""Production figures (production.json): accepted work lost across kill -9 and restart,
ack latency under 20 concurrent requests on one replica (SQLite) and on two (PostgreSQL),
time from start to live and to ready, and the jobs per second the queue sustains.

Figures are for this machine (2 cores: the load generator, the Slack stand-in and the
bot share them); they are not tests. Nothing here was tuned on these figures.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.run import QUESTION, ROOT, SECRET, TOKEN, index_sample_runbooks, pct, send_load
from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from bot.work.queue import DONE, JobBase, JobQueue
from tests.integration.processes import BotProcess, wait_until
from tests.postgres import fresh_database, pg_bin, postgres_server

ALERTS = "C0ALERTS"


#: The sample runbooks' index, built once by bench_dir().
INDEX: list[Path] = []


def env_for(work: Path, standin: SlackStandIn, **extra: str) -> dict[str, str]:
    return {
        "OPSBOT_DATA_DIR": str(work),
        "OPSBOT_INDEX_DIR": str(INDEX[0]),
        "OPSBOT_SLACK_BOT_TOKEN": TOKEN,
        "OPSBOT_SLACK_SIGNING_SECRET": SECRET,
        "OPSBOT_SLACK_API_URL": standin.base_url,
        "OPSBOT_ALERTS_CHANNEL": ALERTS,
        "OPSBOT_WORKERS_LEASE": "2",
        "OPSBOT_LOG_LEVEL": "WARNING",
        **extra,
    }


def answered(standin: SlackStandIn) -> int:
    return len(
        {
            c.params["ts"]
            for c in standin.calls_to("chat.update")
            if "Best match" in c.params["text"]
        }
    )


def kill_restart_cycles(work: Path, standin: SlackStandIn, cycles: int = 20) -> dict[str, object]:
    """Each cycle: 3 slash commands and 1 alert notification accepted, the bot killed -9
    0-300 ms later (random, seeded), then started again. Lost = accepted but never done."""
    rng = random.Random(7)
    work.mkdir(parents=True, exist_ok=True)
    bot = BotProcess(env_for(work, standin), work / "bot.log")
    bot.start()
    accepted_commands = accepted_alerts = 0
    try:
        for cycle in range(cycles):
            sender = SignedSender(bot.events_url, SECRET)
            for i in range(3):
                if sender.slash_command(f"ask {QUESTION} (c{cycle}-{i})").status_code == 200:
                    accepted_commands += 1
            body = alert(f"group-{cycle}")
            if httpx.post(f"{bot.base}/alertmanager", json=body).status_code == 202:
                accepted_alerts += 1
            time.sleep(rng.uniform(0, 0.3))
            bot.kill()
            bot.start()
        queue = JobQueue(Store(f"sqlite:///{work / 'opsbot.sqlite'}").engine)
        with contextlib.suppress(AssertionError):  # count what got done by then
            wait_until(lambda: all(j.state == DONE for j in queue.jobs()), 600, poll=0.2)
        jobs = queue.jobs()
        headers = [
            c for c in standin.calls_to("chat.postMessage")
            if c.params["channel"] == ALERTS and not c.params.get("thread_ts")
        ]  # fmt: skip
        answers = answered(standin)
        return {
            "cycles": cycles,
            "accepted_commands": accepted_commands,
            "accepted_alerts": accepted_alerts,
            "jobs_recorded": len(jobs),
            "jobs_done": sum(j.state == DONE for j in jobs),
            "command_answers": answers,
            "alert_threads": len({c.params["text"] for c in headers}),
            "alert_thread_posts": len(headers),
            "lost": (accepted_commands + accepted_alerts) - sum(j.state == DONE for j in jobs),
            "duplicate_answers": max(0, answers - accepted_commands),
            "retried_jobs": sum(j.attempts > 1 for j in jobs),
        }
    finally:
        bot.kill()


def alert(group: str) -> dict[str, object]:
    labels = {"alertname": "PodCrashLooping", "namespace": "shop", "severity": "warning"}
    return {
        "version": "4", "groupKey": group, "status": "firing", "receiver": "opsbot",
        "groupLabels": {"alertname": "PodCrashLooping", "group": group}, "commonLabels": labels,
        "commonAnnotations": {"summary": "a pod is crash-looping"},
        "alerts": [{"status": "firing", "labels": labels, "startsAt": "2026-11-23T10:00:00Z",
                    "annotations": {"summary": "a pod is crash-looping"}}],
    }  # fmt: skip


def burst(urls: list[str], standin: SlackStandIn, tag: str, n: int = 200) -> dict[str, float]:
    before = answered(standin)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        latencies: list[float] = pool.apply(send_load, (urls, n, 20, tag))
    with contextlib.suppress(AssertionError):  # report the answers that came
        wait_until(lambda: answered(standin) - before >= n, 600, poll=0.2)
    return {
        "requests": n, "concurrency": 20,
        "ack_p50_ms": pct(latencies, 0.5), "ack_p99_ms": pct(latencies, 0.99),
        "ack_max_ms": round(max(latencies) * 1000, 1),
        "answered": answered(standin) - before,
    }  # fmt: skip


def replicas_ack(work: Path, standin: SlackStandIn, database: str | None) -> dict[str, object]:
    """A first burst right after ready, then a warm one; one replica on SQLite, or two on
    PostgreSQL behind one address (requests alternate between them)."""
    count = 1 if database is None else 2
    extra = {"OPSBOT_DATABASE_URL": database} if database else {}
    bots = [
        BotProcess(env_for(work / f"r{i}", standin, **extra), work / f"r{i}.log")
        for i in range(count)
    ]
    work.mkdir(parents=True, exist_ok=True)
    startup: list[dict[str, float]] = []
    try:
        for bot in bots:
            started = time.monotonic()
            bot.start(ready=False)
            live = time.monotonic() - started
            bot.wait("/readyz")
            startup.append(
                {"live_s": round(live, 2), "ready_s": round(time.monotonic() - started, 2)}
            )
        urls = [bot.events_url for bot in bots]
        first = burst(urls, standin, f"first-{count}-")
        warm = burst(urls, standin, f"warm-{count}-")
    finally:
        for bot in bots:
            bot.kill()
    return {"replicas": count, "store": "postgres" if database else "sqlite",
            "start": startup, "first_burst": first, "warm": warm}  # fmt: skip


def queue_throughput(url: str, jobs: int = 2000, workers: int = 4) -> dict[str, float]:
    """Record ``jobs`` jobs, then ``workers`` threads claim and finish them all."""
    queue = JobQueue(Store(url).engine)
    started = time.perf_counter()
    for i in range(jobs):
        queue.enqueue(JobBase(queue="answers", kind="bench", serial_key=f"k{i % 50}"))
    enqueue_s = time.perf_counter() - started

    def work(name: str) -> int:
        done = 0
        while (job := queue.claim("answers", name)) is not None:
            assert job.id is not None
            queue.finish(job.id, name)
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(work, [f"w{i}" for i in range(workers)]))
    run_s = time.perf_counter() - started
    return {
        "jobs": total, "workers": workers,
        "enqueue_per_s": round(jobs / enqueue_s, 1),
        "claim_and_finish_per_s": round(total / run_s, 1),
    }  # fmt: skip


@contextmanager
def bench_dir() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="opsbot-bench-prod-"))
    try:
        index_sample_runbooks(work / "index")
        INDEX[:] = [work / "index"]
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    with bench_dir() as work, SlackStandIn(token=TOKEN) as standin:
        results["queue_sqlite"] = queue_throughput(f"sqlite:///{work / 'queue.sqlite'}")
        results["ack_one_replica"] = replicas_ack(work / "one", standin, None)
        if pg_bin() is not None:
            with postgres_server() as server:
                results["queue_postgres"] = queue_throughput(fresh_database(server))
                results["ack_two_replicas"] = replicas_ack(
                    work / "two", standin, fresh_database(server)
                )
        standin.clear(messages=True)
        results["kill_restart"] = kill_restart_cycles(work / "kill", standin)
    out = ROOT / "bench" / "results" / "production.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # a killed bot's half-read responses
    main()
