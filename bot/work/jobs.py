"""The jobs intake records before it acks (a button click, an eval run), so that intake
depends on the queue and never on the workers that run them."""

from __future__ import annotations

from typing import Any

from bot.store import conversation_id
from bot.work.queue import ANSWERS, EVALS, JobBase


def click_job(payload: dict[str, Any], thread_ts: str | None) -> JobBase:
    """The job of a button click (intake records it before the ack)."""
    channel = payload["channel"]
    key = conversation_id(channel, thread_ts) if thread_ts else f"deploy:{payload['request_id']}"
    return JobBase(
        queue=ANSWERS, kind="deploy_click", serial_key=key, payload=payload,
        dedup_key=f"click:{payload['action_ts']}:{payload['user']}"[:128],
    )  # fmt: skip


def eval_job(payload: dict[str, Any], dedup_key: str | None) -> JobBase:
    return JobBase(queue=EVALS, kind="eval_run", serial_key=f"eval:{payload['suite']}",
                   dedup_key=dedup_key, payload=payload, max_attempts=2)  # fmt: skip
