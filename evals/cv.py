"""Choosing a method's settings by cross-validation: every candidate setting is scored on
the training folds, the best is applied to the held-out fold, and the figure reported is
the held-out folds' (each item scored by a setting chosen without it). Beside it, the fit
figure: the best setting on all the data, scored on that same data (what tuning on a set
and quoting it would report). A change that raises the fit figure but not the
cross-validated one is not an improvement.

``groups`` make the folds leave whole groups out (leave-one-system-out over log systems:
a rule must help systems it was not chosen on).
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=Hashable)
#: A setting's score on some items (higher is better).
Objective = Callable[[S, Sequence[int]], float]


@dataclass
class CVResult(Generic[S]):
    fit_setting: S
    fit_value: float
    cv_value: float
    #: the held-out value of each item (by index): for per-item figures and paired tests
    per_item: dict[int, float] = field(default_factory=dict)
    chosen: Counter[S] = field(default_factory=Counter)  # how often each setting won a fold

    def summary(self, describe: Callable[[S], Any] = str) -> dict[str, Any]:
        return {
            "fit": {"setting": describe(self.fit_setting), "value": round(self.fit_value, 4)},
            "cross_validated": round(self.cv_value, 4),
            "chosen_per_fold": {str(describe(s)): n for s, n in self.chosen.most_common()},
        }


def folds(n: int, k: int, seed: int, groups: Sequence[Hashable] | None = None) -> list[list[int]]:
    """``k`` folds of ``range(n)`` (shuffled by ``seed``); with ``groups``, one fold per
    group (leave-one-group-out) and ``k`` is ignored."""
    if groups is not None:
        by_group: dict[Hashable, list[int]] = {}
        for i, g in enumerate(groups):
            by_group.setdefault(g, []).append(i)
        return list(by_group.values())
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def best(settings: Sequence[S], objective: Objective[S], items: Sequence[int]) -> S:
    """The best setting on ``items``; ties go to the earlier setting (list the simplest,
    or the current default, first)."""
    top, top_value = settings[0], objective(settings[0], items)
    for setting in settings[1:]:
        value = objective(setting, items)
        if value > top_value + 1e-12:
            top, top_value = setting, value
    return top


def cross_validate(
    settings: Sequence[S],
    per_item: Callable[[S, int], float],
    n: int,
    *,
    k: int = 5,
    repeats: int = 3,
    seed: int = 20261201,
    groups: Sequence[Hashable] | None = None,
    objective: Objective[S] | None = None,
) -> CVResult[S]:
    """Cross-validate the choice among ``settings``. ``per_item(setting, i)`` scores item
    ``i`` under a setting; ``objective`` (default: the mean of ``per_item``) is what the
    choice maximises on the training items and what is reported on the held-out ones."""

    def mean_of(setting: S, items: Sequence[int]) -> float:
        return statistics.fmean(per_item(setting, i) for i in items) if items else 0.0

    score = objective or mean_of
    everything = list(range(n))
    fit = best(settings, score, everything)
    chosen: Counter[S] = Counter()
    held: dict[int, list[float]] = {}
    values = []
    for r in range(1 if groups is not None else repeats):
        for test in folds(n, k, seed + r, groups):
            train = [i for i in everything if i not in set(test)]
            setting = best(settings, score, train)
            chosen[setting] += 1
            values.append((score(setting, test), len(test)))
            for i in test:
                held.setdefault(i, []).append(per_item(setting, i))
    # the held-out figure: folds weighted by their size (each item counted once per repeat)
    cv_value = sum(v * m for v, m in values) / sum(m for _, m in values)
    return CVResult(fit, score(fit, everything), cv_value,
                    {i: statistics.fmean(v) for i, v in held.items()}, chosen)  # fmt: skip
