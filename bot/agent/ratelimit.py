"""Per-person budgets for costly tools (``ToolSpec.rate_group``), with the `limits` library's
moving window. Budgets live in the process: with several replicas each keeps its own."""

from __future__ import annotations

import math
import time

from limits import parse, storage, strategies


class RateLimits:
    def __init__(self, rates: dict[str, str]) -> None:
        self._rates = {group: parse(rate) for group, rate in rates.items()}
        self._text = dict(rates)
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def refusal(self, group: str | None, who: str) -> str | None:
        """None when ``who`` may run one more call of ``group`` now (and counts it);
        otherwise why not, and when to try again."""
        rate = self._rates.get(group or "")
        if rate is None or not who:
            return None
        if self._limiter.hit(rate, group or "", who):
            return None
        reset = self._limiter.get_window_stats(rate, group or "", who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return (
            f"you have used your {self._text[group or '']} {group} queries; try again in {wait} s"
        )
