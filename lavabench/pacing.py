"""When the next request may start: a concurrency cap (the worker count) and a rate cap.

The rate cap uses asyncio-throttle over a short sliding window, polled by the single
dispatcher task (never by every worker, which would burn CPU on wake-ups). It is a cap, not
an arrival process: open-loop constant and Poisson arrivals belong to the load shapes.
"""

from __future__ import annotations

import math
from types import TracebackType

from asyncio_throttle import Throttler

_MIN_WINDOW_S = 0.05


class _Gate:
    """`async with gate:` waits until a request may start; leaving it does nothing."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class RateCap(_Gate):
    """At most `rate` starts per second, measured over windows of >= 50 ms."""

    def __init__(self, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be > 0")
        per_window = max(1, math.ceil(rate_per_s * _MIN_WINDOW_S))
        window_s = per_window / rate_per_s
        self.rate_per_s = rate_per_s
        self._throttler = Throttler(
            rate_limit=per_window, period=window_s, retry_interval=min(0.01, window_s / 10)
        )

    async def __aenter__(self) -> None:
        await self._throttler.acquire()


class NoCap(_Gate):
    """No rate limit: only the concurrency cap applies."""


def rate_cap(rate_per_s: float | None) -> RateCap | NoCap:
    return RateCap(rate_per_s) if rate_per_s else NoCap()
