"""The chart a verification ends with: each check's series from before the switch to now,
the switch marked, drawn with the metrics tool's chart code."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.settings import PrometheusSettings
from tools.deploy.analysis import Check
from tools.metrics.chart import COLOURS, render_chart
from tools.metrics.client import Prometheus, Sample

log = logging.getLogger(__name__)
#: How much of the time before the switch the chart shows, at least.
BEFORE_S = 300.0
POINTS = 120


def checks_chart(
    settings: PrometheusSettings, checks: list[Check], switched_at: float, path: Path, title: str
) -> Path | None:
    """Draw the checked series around the switch; None when Prometheus has nothing to draw
    (the verification itself has said why)."""
    end = time.time()
    start = switched_at - max(BEFORE_S, end - switched_at)
    step = float(max(1, round((end - start) / POINTS)))  # whole seconds: Prometheus durations
    samples: list[Sample] = []
    try:
        with Prometheus(settings, query_timeout=settings.query_timeout) as prometheus:
            for check in checks:
                for sample in prometheus.range(check.query, _at(start), _at(end), step):
                    samples.append(Sample({"check": check.name, **sample.labels}, sample.points))
    except Exception as exc:  # a chart is extra: never fail the deploy for it
        log.info("no verification chart: %s: %s", type(exc).__name__, str(exc)[:300])
        return None
    if not samples:
        return None
    drawn = samples[: len(COLOURS)]
    render_chart(drawn, f"checks of {title}", path, rest=len(samples) - len(drawn),
                 marks=[(switched_at, "switch")])  # fmt: skip
    return path


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)
