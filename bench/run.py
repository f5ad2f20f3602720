"""`make bench`: every benchmark, each writing its JSON to bench/results/.

This module's own: Slack ack latency under load, time to status and answer, and the cold
start of `opsbot chat --once` (foundation.json). Then the other bench modules in
``BENCHES``. Figures are for this machine; they are not tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.net import free_port
from bot.slack.standin import SignedSender, SlackStandIn

ROOT = Path(__file__).resolve().parents[1]
OPSBOT = str(Path(sys.executable).with_name("opsbot"))
SECRET = "bench-secret"
TOKEN = "xoxb-bench"
QUESTION = "what should I check when pods crash-loop?"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


@contextmanager
def bot_process(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [OPSBOT, "serve"],
        env={**env, "OPSBOT_PORT": str(port), "OPSBOT_HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("bot did not start")
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def send_load(urls: list[str], n: int, concurrency: int, tag: str = "") -> list[float]:
    """Signed slash commands from ``concurrency`` threads, spread over ``urls`` (replicas
    behind one address); seconds to each HTTP ack.

    Runs in a process of its own, so the load generator shares no interpreter with the
    Web API stand-in that records the bot's answers.
    """
    senders = [SignedSender(url, SECRET) for url in urls]

    def one(i: int) -> float:
        sender = senders[i % len(senders)]
        started = time.perf_counter()
        response = sender.slash_command(f"ask {QUESTION} ({tag}{i})", user_id=f"U{i:04d}")
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return elapsed

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(n)))


def index_sample_runbooks(index_dir: Path, env: dict[str, str] | None = None) -> float:
    """Build the sample runbooks' index into ``index_dir`` with `opsbot index`; seconds."""
    started = time.perf_counter()
    subprocess.run(
        [OPSBOT, "index", str(ROOT / "knowledge" / "runbooks"), "--index", str(index_dir)],
        env={**os.environ, "OPSBOT_DATA_DIR": str(index_dir.parent), **(env or {})},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def ack_latency(
    url: str, standin: SlackStandIn, n: int = 200, concurrency: int = 20
) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        latencies: list[float] = pool.apply(send_load, ([url], n, concurrency))
    # wait until every answer has arrived, so the next figures start from a quiet bot
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        answers = [
            c for c in standin.calls_to("chat.update") if "Best match" in c.params.get("text", "")
        ]
        if len(answers) >= n:
            break
        time.sleep(0.5)
    return {
        "requests": n,
        "concurrency": concurrency,
        "ack_p50_ms": pct(latencies, 0.50),
        "ack_p99_ms": pct(latencies, 0.99),
        "ack_max_ms": round(max(latencies) * 1000, 2),
        "answers_received": len(
            [c for c in standin.calls_to("chat.update") if "Best match" in c.params.get("text", "")]
        ),
    }


def time_to_status_and_answer(
    sender: SignedSender, standin: SlackStandIn, runs: int = 10
) -> dict[str, float]:
    first_status: list[float] = []
    answer: list[float] = []
    for i in range(runs):
        standin.clear()
        start = time.monotonic()
        sender.slash_command(f"ask {QUESTION} #{i}")
        status = standin.wait_for(
            "chat.postMessage", lambda c: c.params.get("thread_ts") is not None, timeout=60
        )
        final = standin.wait_for(
            "chat.update", lambda c: "Best match" in c.params.get("text", ""), timeout=60
        )
        first_status.append(status.at - start)
        answer.append(final.at - start)
    return {
        "runs": runs,
        "first_status_p50_ms": pct(first_status, 0.5),
        "answer_p50_ms": pct(answer, 0.5),
        "answer_max_ms": round(max(answer) * 1000, 2),
    }


def demo_cold_start(env: dict[str, str], runs: int = 3) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [OPSBOT, "chat", "--once", QUESTION], env=env, check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return {"runs": runs, "chat_once_cold_s_median": round(statistics.median(times), 2)}


#: Other benchmark modules, each with a main() that writes its own results file.
BENCHES = (
    "bench.production",
    "bench.deploys",
    "bench.retrieval",
    "bench.log_grouping",
    "bench.rca_ranking",
    "bench.metrics_questions",
    "bench.evals",
    "bench.eval_report",
    "bench.metrics_alerts",
)


def main() -> None:
    foundation()
    for name in BENCHES:
        if importlib.util.find_spec(name) is None:
            continue
        print(f"\n== {name}", flush=True)
        importlib.import_module(name).main()


def foundation() -> None:
    work = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    try:
        with SlackStandIn(token=TOKEN) as standin:
            env = {
                **os.environ,
                "OPSBOT_DATA_DIR": str(work),
                "OPSBOT_SLACK_BOT_TOKEN": TOKEN,
                "OPSBOT_SLACK_SIGNING_SECRET": SECRET,
                "OPSBOT_SLACK_API_URL": standin.base_url,
                "OPSBOT_LOG_LEVEL": "WARNING",
            }
            index_s = round(index_sample_runbooks(work / "index", env), 2)
            cold = demo_cold_start(env)
            with bot_process(env) as url:
                sender = SignedSender(url, SECRET)
                timings = time_to_status_and_answer(sender, standin)
                standin.clear()
                ack = ack_latency(url, standin)
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "index_sample_runbooks_s": index_s,
            "demo_cold_start": cold,
            "slash_command_ack": ack,
            "status_and_answer": timings,
        }
        out = ROOT / "bench" / "results" / "foundation.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
