"""The real Prometheus + Alertmanager test stack answers as the incident data says."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from evals.promstack import (
    DEFAULT_RULES,
    DEFAULT_RULES_YAML,
    EXPORTER_JOB,
    FAMILIES,
    FIRING_ALERTS,
    AlertingStack,
    PromStack,
    find_binary,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "evals" / "suites" / "metrics" / "questions.yaml"
#: Every question file of the suite: each gold query must answer on the stack.
QUESTION_FILES = sorted((ROOT / "evals" / "suites" / "metrics").glob("*.yaml"))
CHECKOUT_5XX = 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[5m]))'
CHECKOUT_P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{job="checkout"}[5m])))'
)


def _get(url: str, **params: Any) -> Any:
    body = httpx.get(url, params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def _series(result: list[dict[str, Any]]) -> list[tuple[float, float]]:
    assert len(result) == 1, result
    return [(float(t), float(v)) for t, v in result[0]["values"]]


def test_up_is_the_exporter_target(prom_stack: PromStack) -> None:
    result = _get(f"{prom_stack.url}/api/v1/query", query="up")["result"]
    assert [(r["metric"]["job"], r["metric"]["instance"], r["value"][1]) for r in result] == [
        (EXPORTER_JOB, prom_stack.exporter.address, "1")
    ]


def test_checkout_5xx_rate_jumps_at_the_incident(prom_stack: PromStack) -> None:
    now = time.time()
    incident = prom_stack.model.incident_ts
    points = _series(prom_stack.query_range(CHECKOUT_5XX, now - 45 * 60, now, step=30))
    before = [v for t, v in points if t <= now - 40 * 60]
    after = [v for t, v in points if t >= incident + 6 * 60]
    assert before and after
    assert max(before) < 0.5, before
    assert min(after) > 10 * max(before), (before, after)
    current = float(prom_stack.query(CHECKOUT_5XX)[0]["value"][1])
    assert current > 8  # 2 instances x 6 extra 5xx/s


def test_checkout_p99_jumps_after_the_incident(prom_stack: PromStack) -> None:
    incident = prom_stack.model.incident_ts
    points = _series(prom_stack.query_range(CHECKOUT_P99, incident - 30 * 60, time.time(), step=30))
    before = [v for t, v in points if t < incident]
    after = [v for t, v in points if t >= incident + 5 * 60]
    assert before and after
    assert all(0.1 < v < 0.35 for v in before), before  # ~0.2 s
    assert all(1.5 < v < 3.0 for v in after), after  # ~2 s


def test_history_is_backfilled_and_counters_never_reset(prom_stack: PromStack) -> None:
    samples = prom_stack.query('count_over_time(http_requests_total{instance="search-1:8080"}[3h])')
    assert samples and all(float(s["value"][1]) >= 700 for s in samples)  # 3 h at 15 s
    for family in FAMILIES:
        if family.type == "counter":
            resets = prom_stack.query(f"sum(resets({family.name}[3h]))")
            assert float(resets[0]["value"][1]) == 0, family.name
    assert prom_stack.query("sum(resets(http_request_duration_seconds_count[3h]))")[0]["value"][
        1
    ] in ("0", "0.0")


def test_metadata_gives_types_and_help(prom_stack: PromStack) -> None:
    metadata = _get(f"{prom_stack.url}/api/v1/metadata")
    for family in FAMILIES:
        entries = metadata.get(family.name)
        assert entries, f"no metadata for {family.name}"
        assert entries[0]["type"] == family.type
        assert entries[0]["help"] == family.help


def test_label_values_are_the_documented_ones(prom_stack: PromStack) -> None:
    jobs = set(_get(f"{prom_stack.url}/api/v1/label/job/values"))
    assert {"checkout", "payments", "search", "llm-gateway", "node", "kube-state-metrics"} <= jobs
    assert _get(f"{prom_stack.url}/api/v1/label/service/values") == ["kube-state-metrics"]
    assert set(_get(f"{prom_stack.url}/api/v1/label/namespace/values")) == {"shop", "ml-serving"}
    codes = set(_get(f"{prom_stack.url}/api/v1/label/code/values"))
    assert codes == {"200", "404", "500", "503"}


def test_default_rules_fire_within_20_seconds(prom_stack: PromStack) -> None:
    deadline = time.monotonic() + 20
    firing: set[str] = set()
    while time.monotonic() < deadline:
        alerts = _get(f"{prom_stack.url}/api/v1/alerts")["alerts"]
        firing = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
        if firing >= set(FIRING_ALERTS):
            break
        time.sleep(0.5)
    assert firing == set(FIRING_ALERTS)
    alerts = _get(f"{prom_stack.url}/api/v1/alerts")["alerts"]
    by_name = {a["labels"]["alertname"]: a for a in alerts}
    assert by_name["HighHttp5xxErrorRate"]["labels"]["job"] == "checkout"
    assert by_name["PodCrashLooping"]["labels"]["pod"] == "checkout-7d9f8c6b5-x2k4p"
    assert by_name["DiskFillingUp"]["labels"]["instance"] == "k8s-worker-2:9100"


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    promtool = find_binary("promtool")
    assert promtool
    path = tmp_path / "rules.yml"
    path.write_text(DEFAULT_RULES_YAML)
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout


# -- Alertmanager end to end ---------------------------------------------------------------


class _Webhook:
    """Records Alertmanager's webhook posts (body and Authorization header)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str | None, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                received.append(
                    (self.headers.get("Authorization"), json.loads(self.rfile.read(length)))
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alertmanager"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    hook = _Webhook()
    yield hook
    hook.close()


def test_rule_to_webhook_through_alertmanager(
    alerting_stack: Callable[..., AlertingStack], webhook: _Webhook
) -> None:
    rule = {
        "groups": [
            {
                "name": "e2e",
                "rules": [
                    {
                        "alert": "HighHttp5xxErrorRate",
                        "expr": DEFAULT_RULES["groups"][0]["rules"][0]["expr"],
                        "labels": {"severity": "critical"},
                    }
                ],
            }
        ]
    }
    started = time.monotonic()
    stack = alerting_stack(webhook.url, bearer_token="s3cret", rules=rule)
    while time.monotonic() - started < 30 and not webhook.posts:
        time.sleep(0.2)
    assert webhook.posts, f"no notification; alertmanager log:\n{stack.alertmanager.stderr_tail()}"
    auth, body = webhook.posts[0]
    assert auth == "Bearer s3cret"
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "opsbot"
    assert body["commonLabels"] == {
        "alertname": "HighHttp5xxErrorRate",
        "job": "checkout",
        "severity": "critical",
    }
    assert stack.alertmanager.alerts()


# -- the metric questions suite --------------------------------------------------------------


def _questions() -> list[dict[str, Any]]:
    return yaml.safe_load(QUESTIONS.read_text())["questions"]


def test_question_suite_shape() -> None:
    questions = _questions()
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids))
    assert len([q for q in questions if q["expect"]]) >= 32
    assert 3 <= len([q for q in questions if q["expect"] is None]) <= 4
    for q in questions:
        assert set(q) <= {"id", "question", "expect", "range"}, q
        assert q["question"].strip()


def _duration(text: str) -> timedelta:
    units = {"m": "minutes", "h": "hours"}
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def _all_questions() -> list[dict[str, Any]]:
    return [q for path in QUESTION_FILES if path.name != "suite.yaml"
            for q in yaml.safe_load(path.read_text())["questions"]]  # fmt: skip


@pytest.mark.parametrize(
    "question", [q for q in _all_questions() if q["expect"]], ids=lambda q: q["id"]
)
def test_gold_query_answers(prom_stack: PromStack, question: dict[str, Any]) -> None:
    if question.get("range"):
        now = time.time()
        result = prom_stack.query_range(
            question["expect"], now - _duration(question["range"]).total_seconds(), now, step=60
        )
    else:
        result = prom_stack.query(question["expect"])
    assert result, f"{question['id']}: {question['expect']} returned nothing"
