"""Verification checks with Argo Rollouts' AnalysisRun semantics, measured by a scripted
measure function (and, in the deploy tests, by a real Prometheus)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from tools.base import ToolError
from tools.deploy.analysis import (
    ERROR,
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    AnalysisRun,
    Check,
    ConditionError,
    check_expression,
    evaluate,
    load_checks,
)

Script = list[list[float] | Exception]


def run(checks: list[Check], results: Script | dict[str, Script]) -> tuple[str, list[str]]:
    """The run's phase and its measurements' phases; ``results`` in order, or by query
    (checks run at once, so each needs its own script)."""
    scripts = {q: iter(r) for q, r in results.items()} if isinstance(results, dict) else None
    shared = iter(results) if isinstance(results, list) else None

    def measure(query: str) -> list[float]:
        value = next(scripts[query] if scripts is not None else shared)  # type: ignore[arg-type]
        if isinstance(value, Exception):
            raise value
        return value

    analysis = AnalysisRun(checks, measure, sleep=lambda _: None)
    return analysis.run(), [m.phase for m in analysis.measurements]


def check(**kw: object) -> Check:
    return Check.model_validate({"name": "c", "query": "up", "count": 3, **kw})


@pytest.mark.parametrize(
    ("condition", "result", "expected"),
    [
        ("result[0] < 0.05", [0.01], True),
        ("result[0] < 0.05", [0.5], False),
        ("len(result) > 0 && result[0] >= 0.99", [1.0], True),
        ("isNaN(result[0]) || result[0] > 1", [math.nan], True),
        ("result[0] > 1", [math.nan], False),  # NaN compares false
        ("not (result[0] == 0)", [2.0], True),
        ("max(result) - min(result) < 10", [3.0, 9.0], True),
    ],
)
def test_conditions_are_evaluated_without_eval(
    condition: str, result: list[float], expected: bool
) -> None:
    assert evaluate(check_expression(condition), result) is expected


@pytest.mark.parametrize(
    "bad", ["__import__('os').system('x')", "result.__class__", "open('f')", "x > 1", "'a' < 'b'"]
)
def test_conditions_refuse_anything_but_arithmetic_on_result(bad: str) -> None:
    with pytest.raises(ValueError):
        check_expression(bad)


def test_an_empty_result_is_a_condition_error() -> None:
    with pytest.raises(ConditionError, match="no element 0"):
        evaluate(check_expression("result[0] < 1"), [])


@pytest.mark.parametrize(
    "text", ["max(result) < 1", "min(result) > 0", "result + 1 > 2", "-result < 0"]
)
def test_a_condition_that_cannot_apply_is_a_condition_error_not_a_crash(text: str) -> None:
    with pytest.raises(ConditionError, match="cannot evaluate"):
        evaluate(check_expression(text), [] if "(" in text else [10.0, 2.0])
    assert check(successCondition=text).judge([]) == INCONCLUSIVE


def test_success_failure_and_inconclusive_measurements() -> None:
    ok = check(successCondition="result[0] < 0.05")
    assert run([ok], [[0.01], [0.02], [0.03]]) == (SUCCESSFUL, [SUCCESSFUL] * 3)
    assert run([ok], [[0.01], [0.2]]) == (FAILED, [SUCCESSFUL, FAILED])
    tolerant = check(successCondition="result[0] < 0.05", failureLimit=1)
    assert run([tolerant], [[0.2], [0.01], [0.01]])[0] == SUCCESSFUL
    both = check(successCondition="result[0] < 0.05", failureCondition="result[0] > 0.5")
    assert run([both], [[0.2]]) == (INCONCLUSIVE, [INCONCLUSIVE])
    assert run([both], [[0.9]]) == (FAILED, [FAILED])
    only_failure = check(failureCondition="result[0] > 0.5")
    assert run([only_failure], [[0.1], [0.1], [0.1]])[0] == SUCCESSFUL
    empty = check(successCondition="result[0] < 0.05")
    assert run([empty], [[]]) == (INCONCLUSIVE, [INCONCLUSIVE])


def test_errors_are_not_measurements_until_too_many_in_a_row() -> None:
    flaky = check(successCondition="result[0] < 1", consecutiveErrorLimit=1)
    down = ToolError("Prometheus at http://p:9090 is unreachable")
    assert run([flaky], [down, [0.5], down, [0.5], [0.5]])[0] == SUCCESSFUL
    assert run([flaky], [down, down]) == (ERROR, [ERROR, ERROR])
    assert run([check(successCondition="result[0] < 1", count=1)], [down]) == (ERROR, [ERROR])


def test_the_worst_check_decides_the_run() -> None:
    good = check(name="good", query="g", successCondition="result[0] < 1", count=1)
    unsure = check(name="unsure", query="u", successCondition="result[0] < 1",
                   failureCondition="result[0] > 5", count=1)  # fmt: skip
    bad = check(name="bad", query="b", successCondition="result[0] < 1", count=1)
    assert run([good, unsure], {"g": [[0.1]], "u": [[3.0]]})[0] == INCONCLUSIVE
    assert run([good, unsure, bad], {"g": [[0.1]], "u": [[3.0]], "b": [[9.0]]})[0] == FAILED


def test_checks_run_at_once_and_a_failure_ends_the_others() -> None:
    """As Argo runs an analysis's metrics: together (the verification takes as long as its
    longest check, not their sum), and a failed one ends the run."""
    slow = check(name="slow", query="s", successCondition="result[0] < 1", count=50,
                 interval="1s")  # fmt: skip
    failing = check(name="failing", query="f", successCondition="result[0] < 1", count=2,
                    interval="1s")  # fmt: skip
    measured: list[str] = []

    def measure(query: str) -> list[float]:
        measured.append(query)
        return [9.0] if query == "f" else [0.1]

    analysis = AnalysisRun([slow, failing], measure, sleep=lambda s: time.sleep(s / 100))
    began = time.monotonic()
    assert analysis.run() == FAILED
    assert measured.count("f") == 1 and measured.count("s") < 10  # ended early
    assert time.monotonic() - began < 1


def test_a_malformed_checks_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text("gemma:\n  staging:\n    - name: p99\n      query: up\n      interval: soon\n")
    with pytest.raises(ToolError, match=r"checks.yaml: gemma.staging.0.interval"):
        load_checks(path)
    path.write_text("gemma:\n  staging:\n    - name: x\n      query: up\n"
                    "      successCondition: __import__('os')\n")  # fmt: skip
    with pytest.raises(ToolError, match="successCondition|success_condition"):
        load_checks(path)
    path.write_text("gemma:\n  '*':\n    - {name: errors, query: up, count: 2}\n")
    checks = load_checks(path)
    assert [c.name for c in checks.for_("gemma", "production")] == ["errors"]
    assert checks.for_("other", "staging") == []


def test_the_local_targets_default_checks_read_the_routers_metrics(tmp_path: Path) -> None:
    """Without a checks file the local target checks the new version's 5xx share and p95
    latency through its stable address: metrics the router exports, labels it sets, PromQL
    that Prometheus' own parser accepts, and conditions that fail only on evidence."""
    import subprocess

    import yaml

    from tests.deploy.test_observability import exported, matcher_labels, metric_names, promtool
    from tools.deploy.analysis import local_default_checks

    errors, latency = local_default_checks("gemma", "staging", 'v"2')
    for c in (errors, latency):
        assert 'model="gemma"' in c.query and 'version="v\\"2"' in c.query
        assert metric_names(c.query) <= set(exported())
        for name, labels in matcher_labels(c.query).items():
            assert labels <= exported()[name] | {"le"}
        assert c.judge([]) == SUCCESSFUL and c.judge([math.nan]) == SUCCESSFUL  # no traffic
    assert errors.judge([0.01]) == SUCCESSFUL and errors.judge([0.2]) == FAILED
    assert latency.judge([1.5]) == SUCCESSFUL and latency.judge([45.0]) == FAILED
    rules = {"groups": [{"name": "defaults", "rules": [
        {"record": f"opsbot:default_{c.name.replace('-', '_')}", "expr": c.query}
        for c in (errors, latency)]}]}  # fmt: skip
    path = tmp_path / "defaults.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
