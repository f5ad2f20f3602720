"""Metric answers are scored on their figures: the label names both sides carry must tell
the series apart one to one; extra labels, or those of a single figure, are not wrong."""

from __future__ import annotations

from evals.scorers.metrics import same_answer, same_result
from tools.metrics.client import Sample

T = 1_700_000_000.0


def series(value: float, **labels: str) -> Sample:
    return Sample(labels=labels, points=[(T, value)])


def test_one_figure_is_its_value_whatever_its_labels() -> None:
    gold = [series(5.0)]  # sum (x)
    assert same_answer([series(5.0, pod="a", job="checkout")], gold)
    assert not same_result([series(5.0, pod="a", job="checkout")], gold)
    assert not same_answer([series(6.0, pod="a")], gold)


def test_series_are_told_apart_by_the_golds_labels() -> None:
    gold = [series(1.0, instance="a"), series(2.0, instance="b")]  # sum by (instance)
    raw = [series(1.0, instance="a", job="x"), series(2.0, instance="b", job="x")]
    assert same_answer(raw, gold)
    assert not same_answer([series(2.0, instance="a", job="x"), series(1.0, instance="b")], gold)
    # two of ours that the gold's labels cannot tell apart are not its two series
    assert not same_answer([series(1.0, instance="a", pod="p"), series(1.0, instance="a", pod="q")],
                           [series(1.0, instance="a"), series(1.0, instance="b")])  # fmt: skip
    # the gold's raw series against a breakdown that keeps only the label asked for
    assert same_answer([series(1.0, instance="a"), series(2.0, instance="b")], raw)
    # another breakdown (by job) is not told apart by the labels both carry
    assert not same_answer([series(1.0, job="x"), series(2.0, job="y")], gold)
    assert not same_answer([series(1.0), series(2.0, job="x")], gold)
    assert not same_answer([series(3.0)], gold)


def test_nothing_is_no_answer() -> None:
    assert not same_answer([], [series(1.0)])
    assert not same_answer([series(1.0)], [])
