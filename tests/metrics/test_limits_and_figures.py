"""Pure parts of the metrics tools: durations, query limits, series figures, charts,
slash-command arguments and per-person budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from bot.agent.ratelimit import RateLimits
from bot.slack.commands import metrics_args
from tools.base import ToolError
from tools.metrics.chart import COLOURS, render_chart
from tools.metrics.client import Sample, _error_text, shown_url
from tools.metrics.durations import format_duration, parse_duration
from tools.metrics.limits import plan_window
from tools.metrics.query import metric_names_in
from tools.metrics.summary import fmt, level_shift, stats

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800)]
)
def test_durations_round_trip(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "5", "an hour", "0s", "5 m"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_default_step_gives_a_readable_chart() -> None:
    window = plan_window("1h", None, max_points=1000, max_range="7d", end=END)
    assert window.step == 15 and window.points == 241 and not window.notes


def test_a_fine_step_is_raised_with_a_note() -> None:
    window = plan_window("7d", "1s", max_points=1000, max_range="7d", end=END)
    assert window.points <= 1000
    assert "step raised from 1s" in window.notes[0]
    assert "OPSBOT_PROMETHEUS_MAX_POINTS" in window.notes[0]


def test_a_range_beyond_the_limit_is_refused_naming_the_setting() -> None:
    with pytest.raises(ToolError, match="OPSBOT_PROMETHEUS_MAX_RANGE"):
        plan_window("30d", None, max_points=1000, max_range="7d", end=END)
    with pytest.raises(ToolError, match="not a duration"):
        plan_window("yesterday", None, max_points=1000, max_range="7d", end=END)


def test_level_shift_finds_the_jump_not_the_noise() -> None:
    rng = np.random.default_rng(7)
    times = np.arange(240) * 15.0
    values = np.where(np.arange(240) < 160, 0.2, 2.0) + rng.normal(0, 0.05, 240)
    values[40] = 3.0  # one spike
    change = level_shift(times, values)
    assert change is not None
    assert change.at == times[160]
    assert change.before == pytest.approx(0.2, abs=0.05)
    assert change.after == pytest.approx(2.0, abs=0.05)


def test_series_figures() -> None:
    sample = Sample({"job": "a"}, [(0, 1.0), (15, float("nan")), (30, 3.0)])
    figures = stats(sample)
    assert figures is not None
    assert (figures.current, figures.minimum, figures.maximum, figures.mean) == (3, 1, 3, 2)
    assert stats(Sample({}, [(0, float("nan"))])) is None
    assert fmt(1_250_000) == "1.25M" and fmt(0.000012) == "1.20e-05" and fmt(0.25) == "0.25"


def test_metric_names_of_a_promql_expression() -> None:
    promql = (
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{job="checkout", path="/a{b}"}[5m]))) / on(job) group_left up offset 5m'
    )
    assert metric_names_in(promql) == ["http_request_duration_seconds_bucket", "up"]


def test_prometheus_error_text_is_read_from_the_client_exception() -> None:
    from prometheus_api_client import PrometheusApiClientException

    body = b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed"}'
    exc = PrometheusApiClientException(f"HTTP Status Code 400 ({body!r})")
    assert _error_text(exc) == (400, "1:5: parse error: unclosed")


def test_urls_in_messages_lose_their_credentials() -> None:
    assert shown_url("https://bob:s3cret@prom.example:9090/p?token=x") == (
        "https://prom.example:9090/p"
    )


def test_chart_draws_one_line_per_series_in_its_own_colour(tmp_path: Path) -> None:
    samples = [
        Sample(
            {"job": "checkout", "instance": f"checkout-{i}"}, [(t * 60.0, i + t) for t in range(60)]
        )
        for i in range(3)
    ]
    chart = render_chart(samples, "test", tmp_path / "c.png", rest=4)
    assert chart.lines == 3
    assert chart.labels == [f'{{instance="checkout-{i}"}}' for i in range(3)]
    pixels = image.imread(str(chart.path))[:, :, :3]
    assert pixels.shape[:2] == (450, 1000)
    for colour in COLOURS[:3]:
        close = np.all(np.abs(pixels - np.array(colour)) < 0.02, axis=2)
        assert close.sum() > 300, f"no line in colour {colour}"
    unused = np.all(np.abs(pixels - np.array(COLOURS[3])) < 0.02, axis=2)
    assert unused.sum() < 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("up", {"promql": "up"}),
        ("rate(x[5m]) 6h 1m", {"promql": "rate(x[5m])", "range": "6h", "step": "1m"}),
        ("up offset 5m", {"promql": "up offset 5m"}),
        (
            "sum(x) by (job) range=2h step=30s",
            {"promql": "sum(x) by (job)", "range": "2h", "step": "30s"},
        ),
    ],
)
def test_metrics_command_arguments(text: str, expected: dict[str, str]) -> None:
    assert metrics_args(text) == expected


def test_budgets_are_per_person_and_say_when_to_retry() -> None:
    limits = RateLimits({"prometheus": "2/minute"})
    assert limits.refusal("prometheus", "U1") is None
    assert limits.refusal("prometheus", "U1") is None
    refusal = limits.refusal("prometheus", "U1")
    assert refusal is not None and "2/minute" in refusal and "try again in" in refusal
    assert limits.refusal("prometheus", "U2") is None
    assert limits.refusal(None, "U1") is None  # a tool with no budget
