"""The bot's own metrics, served on ``GET /metrics`` (Prometheus text format).

One registry per process. Counters and histograms are updated where the work happens;
the queue gauges are read from the database when ``/metrics`` is scraped, so every
replica reports the shared queue the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds buckets for acks (fast) and for work (slow).
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0)
WORK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

SLACK_REQUESTS = Counter(
    "opsbot_slack_requests_total",
    "Requests to /slack/events by kind (command, event, action, other) and outcome "
    "(accepted, answered_in_ack, duplicate, rejected, invalid).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
ACK_LATENCY = Histogram(
    "opsbot_ack_latency_seconds",
    "Time from a request's arrival to its acknowledgement (Slack and the webhook).",
    ["kind"],
    buckets=ACK_BUCKETS,
    registry=REGISTRY,
)
ANSWERS = Counter(
    "opsbot_answers_total",
    "Answers finished, by outcome (answered, pending_approval, error).",
    ["outcome"],
    registry=REGISTRY,
)
ANSWER_DURATION = Histogram(
    "opsbot_answer_duration_seconds",
    "Time a worker spent on one answer.",
    buckets=WORK_BUCKETS,
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "opsbot_tool_calls_total",
    "Tool calls by tool and status (ok, no_data, error, approval_required, refused).",
    ["tool", "status"],
    registry=REGISTRY,
)
TOOL_DURATION = Histogram(
    "opsbot_tool_call_duration_seconds",
    "Time one tool call took.",
    ["tool"],
    buckets=WORK_BUCKETS,
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "opsbot_model_calls_total",
    "Calls to the language model by purpose (plan, summary) and outcome (ok, error).",
    ["purpose", "outcome"],
    registry=REGISTRY,
)
MODEL_DURATION = Histogram(
    "opsbot_model_call_duration_seconds",
    "Time one language-model call took.",
    ["purpose"],
    buckets=WORK_BUCKETS,
    registry=REGISTRY,
)
JOBS = Counter(
    "opsbot_jobs_total",
    "Jobs finished by queue, kind and outcome (done, retried, failed).",
    ["queue", "kind", "outcome"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "opsbot_queue_depth",
    "Jobs waiting (queued) or being worked on (running), per queue; shared by all replicas.",
    ["queue", "state"],
    registry=REGISTRY,
)
QUEUE_OLDEST_AGE = Gauge(
    "opsbot_queue_oldest_job_age_seconds",
    "Age of the oldest job still waiting in each queue (0 when none waits).",
    ["queue"],
    registry=REGISTRY,
)
ALERT_NOTIFICATIONS = Counter(
    "opsbot_alert_notifications_total",
    "Alertmanager notifications by status (firing, resolved) and outcome (accepted, "
    "rejected, starting).",
    ["status", "outcome"],
    registry=REGISTRY,
)
DEPENDENCY_UP = Gauge(
    "opsbot_dependency_up",
    "1 when a dependency answered the last readiness check, else 0.",
    ["dependency"],
    registry=REGISTRY,
)
READY = Gauge("opsbot_ready", "1 when the replica is ready to work.", registry=REGISTRY)
DEPLOYS = Counter(
    "opsbot_deploys_total",
    "Model deploys and rollbacks by environment, action and outcome.",
    ["environment", "action", "outcome"],
    registry=REGISTRY,
)
EVAL_RUNS = Counter(
    "opsbot_eval_runs_total",
    "Eval runs by suite and outcome (passed, regressed, invalid, error).",
    ["suite", "outcome"],
    registry=REGISTRY,
)

ROUTER_REQUESTS = Counter(
    "opsbot_model_requests_total",
    "Requests through a model's stable address, by model, environment, version and HTTP status.",
    ["model", "env", "version", "code"],
    registry=REGISTRY,
)
ROUTER_LATENCY = Histogram(
    "opsbot_model_request_duration_seconds",
    "Time a request through a model's stable address took.",
    ["model", "env", "version"],
    buckets=WORK_BUCKETS,
    registry=REGISTRY,
)
ROUTER_TOKENS = Counter(
    "opsbot_model_tokens_total",
    "Tokens reported by the model server's usage, by kind (prompt, completion).",
    ["model", "env", "version", "kind"],
    registry=REGISTRY,
)
ROUTER_IN_FLIGHT = Gauge(
    "opsbot_model_requests_in_flight",
    "Requests through a model's stable address not answered yet.",
    ["model", "env", "version"],
    registry=REGISTRY,
)

#: Every metric family the bot exports (deploy/ rules and dashboards may use only these).
FAMILIES = {
    metric._name
    for metric in (
        SLACK_REQUESTS, ACK_LATENCY, ANSWERS, ANSWER_DURATION, TOOL_CALLS, TOOL_DURATION,
        MODEL_CALLS, MODEL_DURATION, JOBS, QUEUE_DEPTH, QUEUE_OLDEST_AGE, ALERT_NOTIFICATIONS,
        DEPENDENCY_UP, READY, DEPLOYS, EVAL_RUNS, ROUTER_REQUESTS, ROUTER_LATENCY,
        ROUTER_TOKENS, ROUTER_IN_FLIGHT,
    )
}  # fmt: skip


@contextmanager
def model_call(purpose: str) -> Iterator[None]:
    """Count and time one language-model call (its outcome: ok, or error when it raises)."""
    started = time.monotonic()
    try:
        yield
    except Exception:
        MODEL_CALLS.labels(purpose, "error").inc()
        raise
    else:
        MODEL_CALLS.labels(purpose, "ok").inc()
    finally:
        MODEL_DURATION.labels(purpose).observe(time.monotonic() - started)
