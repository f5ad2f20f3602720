"""The paired bootstrap and flips that decide a regression."""

from __future__ import annotations

import pytest

from evals.stats import compare, flips, paired_bootstrap


def test_no_change_has_an_interval_around_zero() -> None:
    same = [1.0, 0.0, 1.0, 1.0, 0.0] * 8
    diff, low, high = paired_bootstrap(same, same)
    assert diff == low == high == 0.0


def test_a_consistent_drop_is_significant_and_a_noisy_one_is_not() -> None:
    base = {f"c{i}": 1.0 for i in range(40)}
    dropped = {f"c{i}": (0.0 if i < 12 else 1.0) for i in range(40)}
    c = compare("hit@1", base, dropped)
    assert c is not None and c.diff == pytest.approx(-0.3) and c.significant and c.high < 0
    noisy_base = {f"c{i}": float(i % 2) for i in range(40)}
    noisy = {f"c{i}": float((i + (1 if i in (3, 4) else 0)) % 2) for i in range(40)}
    n = compare("hit@1", noisy_base, noisy)
    assert n is not None and not n.significant and n.low < 0 < n.high


def test_only_cases_in_both_runs_are_compared_and_flips_are_named() -> None:
    c = compare("m", {"a": 1.0, "b": 0.0}, {"b": 1.0, "z": 0.0})
    assert c is not None and c.cases == 1 and c.diff == 1.0
    assert compare("m", {"a": 1.0}, {"b": 1.0}) is None
    assert flips({"a": True, "b": False, "c": True}, {"a": False, "b": True, "c": True}) == (
        ["a"], ["b"])  # fmt: skip
    with pytest.raises(ValueError):
        paired_bootstrap([], [])
