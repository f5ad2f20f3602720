"""Per-person budgets for costly tools (``ToolSpec.rate_group``), as moving windows.

With a store the calls are counted in its database, so every replica draws on the same
budget; without one (tests, `opsbot chat`) the `limits` library counts them in memory.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse, storage, strategies

if TYPE_CHECKING:
    from bot.store import Store


class RateLimits:
    def __init__(self, rates: dict[str, str], store: Store | None = None) -> None:
        self._rates: dict[str, RateLimitItem] = {g: parse(r) for g, r in rates.items()}
        self._text = dict(rates)
        self._store = store
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def refusal(self, group: str | None, who: str) -> str | None:
        """None when ``who`` may run one more call of ``group`` now (and counts it);
        otherwise why not, and when to try again."""
        rate = self._rates.get(group or "")
        if rate is None or not who or group is None:
            return None
        wait = self._wait(rate, group, who)
        if wait is None:
            return None
        return (
            f"you have used your {self._text[group]} {group} queries; "
            f"try again in {max(1, math.ceil(wait))} s"
        )

    def _wait(self, rate: RateLimitItem, group: str, who: str) -> float | None:
        if self._store is not None:
            return self._store.hit(f"{group}:{who}", limit=rate.amount, window_s=rate.get_expiry())
        if self._limiter.hit(rate, group, who):
            return None
        return self._limiter.get_window_stats(rate, group, who).reset_time - time.time()
