"""What a range query may cost: the range, the step and the points per series.

A step finer than the point budget allows is raised (with a note), never silently; a range
beyond the maximum is refused with the setting that allows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tools.base import ToolError
from tools.metrics.durations import format_duration, parse_duration

#: Points a chart needs to read well; the default step aims at this many.
TARGET_POINTS = 240
#: Steps a default is rounded up to, so that axes and rate windows read naturally.
NICE_STEPS = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass
class Window:
    start: datetime
    end: datetime
    step: float
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def points(self) -> int:
        return int(self.seconds // self.step) + 1


def nice_step(seconds: float) -> float:
    for step in NICE_STEPS:
        if step >= seconds:
            return float(step)
    return float(math.ceil(seconds / 86400) * 86400)


def plan_window(
    range_text: str,
    step_text: str | None,
    *,
    max_points: int,
    max_range: str,
    end: datetime | None = None,
) -> Window:
    """The window a range query runs over, within the limits."""
    try:
        seconds = parse_duration(range_text)
        step = parse_duration(step_text) if step_text else None
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    if seconds > parse_duration(max_range):
        raise ToolError(
            f"a range of {range_text} is longer than the {max_range} allowed "
            "(OPSBOT_PROMETHEUS_MAX_RANGE)"
        )
    end = end or datetime.now(UTC)
    step = step or nice_step(seconds / TARGET_POINTS)
    window = Window(end - timedelta(seconds=seconds), end, step)
    if window.points > max_points:
        raised = nice_step(seconds / (max_points - 1))
        window.notes.append(
            f"step raised from {format_duration(window.step)} to {format_duration(raised)} "
            f"to stay within {max_points} points per series (OPSBOT_PROMETHEUS_MAX_POINTS)"
        )
        window.step = raised
    return window
