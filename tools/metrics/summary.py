"""Figures of a series: current value, min, max, mean, and its biggest change and when.

The biggest change is the split of the series into a before and an after whose means
differ most, weighted by how balanced the split is (a level shift, as in binary
segmentation), so one noisy point does not win over a sustained jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tools.metrics.client import Sample

#: Points each side of a split needs for a change to count.
MIN_SIDE = 3


@dataclass(frozen=True)
class Change:
    at: float  # unix time of the first point after the change
    before: float  # mean before
    after: float  # mean after


@dataclass(frozen=True)
class SeriesStats:
    labels: dict[str, str]
    current: float
    minimum: float
    maximum: float
    mean: float
    points: int
    change: Change | None


def level_shift(times: np.ndarray, values: np.ndarray) -> Change | None:
    n = len(values)
    if n < 2 * MIN_SIDE:
        return None
    csum = np.cumsum(values)
    k = np.arange(MIN_SIDE, n - MIN_SIDE + 1)
    before = csum[k - 1] / k
    after = (csum[-1] - csum[k - 1]) / (n - k)
    score = np.abs(after - before) * np.sqrt(k * (n - k)) / n
    best = int(np.argmax(score))
    if score[best] == 0:
        return None
    split = int(k[best])
    return Change(at=float(times[split]), before=float(before[best]), after=float(after[best]))


def stats(sample: Sample) -> SeriesStats | None:
    """Figures of a series; None when it has no finite points."""
    finite = [(t, v) for t, v in sample.points if math.isfinite(v)]
    if not finite:
        return None
    times = np.array([t for t, _ in finite])
    values = np.array([v for _, v in finite])
    return SeriesStats(
        labels=sample.labels,
        current=float(values[-1]),
        minimum=float(values.min()),
        maximum=float(values.max()),
        mean=float(values.mean()),
        points=len(values),
        change=level_shift(times, values),
    )


def fmt(value: float) -> str:
    """A number as people read it: 3 significant digits, SI suffixes for big ones."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e4, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude and magnitude < 0.001:
        return f"{value:.2e}"
    return f"{value:.3g}"


def series_name(labels: dict[str, str], varying: set[str] | None = None) -> str:
    """``name{a="x"}``, keeping only the labels that tell series apart when given."""
    name = labels.get("__name__", "")
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if varying is not None:
        shown = {k: v for k, v in shown.items() if k in varying} or shown
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


def varying_labels(samples: list[Sample]) -> set[str]:
    """Labels whose value differs between series (all labels for a single series)."""
    if len(samples) < 2:
        return {k for s in samples for k in s.labels}
    keys = {k for s in samples for k in s.labels}
    return {k for k in keys if len({s.labels.get(k) for s in samples}) > 1}
