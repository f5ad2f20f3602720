"""Comparing a run with its baseline: the difference of a metric's mean over the cases both
scored, a paired bootstrap 95 % interval of it, and the cases that flipped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    metric: str
    baseline: float
    value: float
    diff: float
    low: float
    high: float
    cases: int

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    base: list[float], new: list[float], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Mean difference new − base and its 95 % percentile interval, resampling case pairs."""
    if len(base) != len(new) or not base:
        raise ValueError("paired samples of the same non-zero length are needed")
    diffs = np.asarray(new, dtype=float) - np.asarray(base, dtype=float)
    low, high = _bootstrap_mean(diffs, resamples, seed)
    return float(diffs.mean()), low, high


def mean_interval(values: list[float], resamples: int = RESAMPLES,
                  seed: int = 0) -> tuple[float, float] | None:  # fmt: skip
    """A bootstrap 95 % percentile interval of the mean over the cases (None for < 2)."""
    if len(values) < 2:
        return None
    return _bootstrap_mean(np.asarray(values, dtype=float), resamples, seed)


def _bootstrap_mean(data: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The 95 % percentile interval of ``data``'s mean over ``resamples`` resamplings."""
    picks = np.random.default_rng(seed).integers(0, len(data), size=(resamples, len(data)))
    low, high = np.percentile(data[picks].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def compare(metric: str, base: dict[str, float], new: dict[str, float]) -> Comparison | None:
    """Per-case scores of one metric, by case id; None when no case was scored in both."""
    shared = sorted(set(base) & set(new))
    if not shared:
        return None
    b, n = [base[c] for c in shared], [new[c] for c in shared]
    diff, low, high = paired_bootstrap(b, n)
    return Comparison(metric, float(np.mean(b)), float(np.mean(n)), diff, low, high, len(shared))


def flips(base: dict[str, bool], new: dict[str, bool]) -> tuple[list[str], list[str]]:
    """Cases that went pass → fail, and fail → pass."""
    shared = sorted(set(base) & set(new))
    return ([c for c in shared if base[c] and not new[c]],
            [c for c in shared if not base[c] and new[c]])  # fmt: skip
