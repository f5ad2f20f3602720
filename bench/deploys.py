"""Deploy figures (deploys.json) on the packaged Gemma GGUF and the local target: approval
click → card updated, approval → the new version answering through the stable address,
how many executions 20 racing approval clicks cause (on one bot process on SQLite, and
with the clicks split between two processes on PostgreSQL), and a failing measurement →
the old version answering through the stable address again (checks on a real Prometheus).

Figures are for this machine; nothing was tuned on them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.run import ROOT, SECRET, TOKEN, index_sample_runbooks
from bot.deploys.requests import ROLLED_BACK, Requests
from bot.deploys.targets.local import stop_all
from bot.llm_server import embedded_model_file
from bot.slack.standin import RecordedCall, SignedSender, SlackStandIn
from bot.store import Store
from evals.promstack import PrometheusServer, find_binary
from tests.integration.processes import BotProcess, wait_until
from tests.postgres import fresh_database, pg_bin, postgres_server
from tools.deploy.registry import Registry

ALICE, APPROVERS = "U0ALICE", ["U0BOB", "U0CAROL"]


def click(url: str, request_id: int, plan: str, channel: str, thread_ts: str, user: str) -> int:
    payload = {
        "type": "block_actions", "user": {"id": user}, "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "thread_ts": thread_ts},
        "actions": [{"action_id": "deploy_approve", "type": "button",
                     "action_ts": f"{time.time():.6f}", "value": f"{request_id}:{plan}"}],
    }  # fmt: skip
    return SignedSender(url, SECRET).interaction(payload).status_code


def served_by(base: str) -> str | None:
    try:
        reply = httpx.post(f"{base}/models/gemma/staging/v1/completions",
                           json={"prompt": "Hi", "max_tokens": 1}, timeout=30)  # fmt: skip
        return str(reply.json().get("model")) if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def one_deploy(bots: list[BotProcess], standin: SlackStandIn, requests: Requests, version: str,
               racing: int) -> dict[str, float | int]:  # fmt: skip
    """Request VERSION, then ``racing`` approval clicks at once, spread over the bots."""
    standin.clear()
    SignedSender(bots[0].events_url, SECRET).slash_command(
        f"deploy gemma {version} staging", user_id=ALICE
    )
    wait_until(lambda: bool(requests.history("gemma"))
               and requests.history("gemma")[-1].version == version
               and bool(requests.history("gemma")[-1].card_ts), 60)  # fmt: skip
    request = requests.history("gemma")[-1]
    assert request.id is not None
    args = (request.id, request.plan_hash[:16], request.channel, request.thread_ts)
    started = time.monotonic()
    with ThreadPoolExecutor(racing) as pool:
        list(pool.map(lambda i: click(bots[i % len(bots)].events_url, *args,
                                      APPROVERS[i % 2]), range(racing)))  # fmt: skip
    # the card drawn past pending: "approved", or already "deploying…" when the execution
    # (maybe on the other replica) moved the request before the click's redraw read it
    card_at = wait_until(lambda: any(
        c.params.get("ts") == request.card_ts and c.at >= started
        and "waiting for approval" not in c.params.get("text", "")
        for c in standin.calls_to("chat.update")), 30)  # fmt: skip
    serving_at = wait_until(lambda: served_by(bots[0].base) == f"gemma-{version}", 180)
    time.sleep(1)
    final = requests.get(request.id)
    assert final is not None
    return {"click_to_card_updated_s": round(card_at - started, 3),
            "approval_to_serving_s": round(serving_at - started, 2),
            "racing_clicks": racing, "executions": final.executions}  # fmt: skip


#: Every deploy is checked; the last one against a check that fails at its first measurement.
CHECK = "gemma:\n  staging:\n    - {{name: {name}, query: {query}, count: 1, {condition}}}\n"
PASSING = CHECK.format(name="ok", query="vector(0)", condition="successCondition: 'result[0] == 0'")
FAILING = CHECK.format(
    name="bad", query="vector(1)", condition="failureCondition: 'result[0] >= 1'"
)


def failing_deploy(bots: list[BotProcess], standin: SlackStandIn, requests: Requests,
                   checks: Path, version: str, old: str) -> dict[str, float | str]:  # fmt: skip
    """Deploy VERSION under a failing check: the failed measurement → OLD serving again."""
    checks.write_text(FAILING)
    standin.clear()
    SignedSender(bots[0].events_url, SECRET).slash_command(
        f"deploy gemma {version} staging", user_id=ALICE
    )
    wait_until(lambda: requests.history("gemma")[-1].version == version
               and bool(requests.history("gemma")[-1].card_ts), 60)  # fmt: skip
    request = requests.history("gemma")[-1]
    assert request.id is not None
    click(bots[0].events_url, request.id, request.plan_hash[:16], request.channel,
          request.thread_ts, APPROVERS[0])  # fmt: skip

    def measured(call: RecordedCall) -> bool:
        return "check *bad* #1" in call.params.get("text", "")

    failed = standin.wait_for("chat.postMessage", measured, 180)
    back_at = wait_until(lambda: served_by(bots[0].base) == f"gemma-{old}", 60)
    # the old version serves again before the request's last move is written
    wait_until(lambda: getattr(requests.get(request.id or 0), "state", "") == ROLLED_BACK, 30)
    final = requests.get(request.id)
    checks.write_text(PASSING)
    return {"failed_measurement_to_old_serving_s": round(back_at - failed.at, 3),
            "state": final.state if final else "?"}  # fmt: skip


def run_case(work: Path, gguf: Path, database: str | None, processes: int,
             prometheus: str) -> dict[str, object]:  # fmt: skip
    work.mkdir(parents=True)
    checks = work / "checks.yaml"
    checks.write_text(PASSING)
    extra = {"OPSBOT_DATABASE_URL": database} if database else {}
    url = database or f"sqlite:///{work / 'data' / 'opsbot.sqlite'}"
    (work / "data").mkdir()
    store = Store(url)
    registry = Registry(store.engine)
    for v, ctx in (("v1", 512), ("v2", 1024), ("v3", 768)):
        registry.register("gemma", v, str(gguf), by=ALICE,
                          params={"served_name": f"gemma-{v}", "context_length": ctx})  # fmt: skip
    with SlackStandIn(token=TOKEN) as standin:
        env = {
            "OPSBOT_DATA_DIR": str(work / "data"), "OPSBOT_INDEX_DIR": str(work.parent / "index"),
            "OPSBOT_SLACK_BOT_TOKEN": TOKEN, "OPSBOT_SLACK_SIGNING_SECRET": SECRET,
            "OPSBOT_SLACK_API_URL": standin.base_url, "OPSBOT_LOG_LEVEL": "WARNING",
            "OPSBOT_DEPLOY_APPROVERS": json.dumps({"staging": APPROVERS}),
            "OPSBOT_DEPLOY_CHECKS": str(checks), "OPSBOT_PROMETHEUS_URL": prometheus, **extra,
        }  # fmt: skip
        bots = [BotProcess(env, work / f"bot{i}.log") for i in range(processes)]
        try:
            for bot in bots:
                bot.start()
            requests = Requests(store.engine)
            runs = [one_deploy(bots, standin, requests, v, 20) for v in ("v1", "v2", "v3")]
            failed = failing_deploy(bots, standin, requests, checks, "v1", "v3")
        finally:
            for bot in bots:
                bot.kill()
            stop_all(work / "data")
    card = statistics.median(r["click_to_card_updated_s"] for r in runs)
    serving = statistics.median(r["approval_to_serving_s"] for r in runs)
    return {
        "processes": processes, "store": "postgres" if database else "sqlite", "deploys": runs,
        "click_to_card_updated_s_median": card, "approval_to_serving_s_median": serving,
        "executions_per_deploy": sorted({int(r["executions"]) for r in runs}),
        "failing_check": failed,
    }  # fmt: skip


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="opsbot-bench-deploys-"))
    try:
        index_sample_runbooks(work / "index")
        gguf = embedded_model_file(work / "models")
        if find_binary("prometheus") is None:
            raise SystemExit("prometheus is needed (make prom-tools)")
        with PrometheusServer(work / "tsdb", workdir=work / "prom") as prom:
            results: dict[str, object] = {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "model": "Gemma 3 270M base GGUF (Q4_K_M) on llama.cpp, CPU",
                "one_process_sqlite": run_case(work / "one", gguf, None, 1, prom.url),
            }
            if pg_bin() is not None:
                with postgres_server() as server:
                    results["two_processes_postgres"] = run_case(
                        work / "two", gguf, fresh_database(server), 2, prom.url
                    )
        out = ROOT / "bench" / "results" / "deploys.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
