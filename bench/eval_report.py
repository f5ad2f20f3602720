"""A scheduled eval report as it arrives in a channel: the Block Kit summary, the thread's
worst cases and the trend charts, recorded by the Slack stand-in from a real `opsbot serve`.

Two runs of the tools suite are stored first (so the trend has points), then a schedule of
it is made due and the bot's schedule loop fires it. Writes bench/results/eval_report.json
(the summary's blocks, the thread's messages, each chart's name and size) and the first
chart to bench/results/eval_report.png.

    python -m bench.eval_report
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session

from bench.production import bench_dir, env_for
from bench.run import SECRET, TOKEN
from bot.slack.standin import SignedSender, SlackStandIn
from bot.store import Store
from evals.schedule import EvalSchedule
from tests.integration.processes import BotProcess, wait_until

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "eval_report.json"
CHART = ROOT / "bench" / "results" / "eval_report.png"
SUITE = "tools"


def main() -> None:
    with bench_dir() as work, SlackStandIn(token=TOKEN) as standin:
        env = env_for(work / "bot", standin)
        for _ in range(2):  # earlier runs, for the trend
            subprocess.run([sys.executable, "-m", "bot.cli", "eval", "run", SUITE, "--json"],
                           env={**os.environ, **env}, capture_output=True, check=False)  # fmt: skip
        bot = BotProcess(env, work / "bot.log")
        try:
            bot.start()
            url = standin.response_url()
            SignedSender(bot.events_url, SECRET).slash_command(
                f'eval schedule {SUITE} "0 8 * * *" <#C0OPS|ops>', response_url=url
            )
            standin.wait_for("response_url", lambda c: "Schedule #1" in json.dumps(c.params))
            engine = Store(f"sqlite:///{work / 'bot' / 'opsbot.sqlite'}").engine
            due = datetime.now(UTC) - timedelta(seconds=1)
            with Session(engine) as session:
                moved = update(EvalSchedule).where(EvalSchedule.id == 1)  # type: ignore[arg-type]
                session.execute(moved.values(next_at=due))
                session.commit()
            summary = standin.wait_for(
                "chat.postMessage", lambda c: c.params.get("text", "").startswith("eval "), 180
            )
            wait_until(lambda: len(standin.calls_to("files.upload")) >= 4, 60)
        finally:
            bot.kill()
        replies = [c.params.get("text") for c in standin.calls_to("chat.postMessage")
                   if c.params.get("thread_ts")]  # fmt: skip
        uploads = standin.calls_to("files.upload")
        charts = [{"bytes": len(c.content or b""), "png": (c.content or b"")[:4] == b"\x89PNG"}
                  for c in uploads]  # fmt: skip
        if uploads and uploads[0].content:
            CHART.write_bytes(uploads[0].content)
        results = {
            "data": f"the {SUITE} suite's dev split: two runs stored, then a schedule fired",
            "summary_text": summary.params.get("text"),
            "summary_blocks": summary.params.get("blocks"),
            "thread_replies": replies, "charts": charts,
            "first_chart": CHART.name if uploads else None,
        }  # fmt: skip
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False)[:3000])


if __name__ == "__main__":
    main()
