"""When the next request may start: a load shape, a concurrency cap and a rate cap.

Load shapes (`runner.arrival`): `closed` sends the next job as soon as a slot is free (and
the rate cap allows); `constant` and `poisson` are open-loop arrivals at `runner.rate`, every
job's intended send time computed up front (`arrival_offsets_s`, seeded), so a client that
falls behind shows up as dispatch lateness instead of silently lowering the load.

The rate cap uses asyncio-throttle over a short sliding window, polled by the single
dispatcher task (never by every worker, which would burn CPU on wake-ups). It is a cap, not
an arrival process, and is not used with the open-loop shapes.
"""

from __future__ import annotations

import math
import random
from contextlib import AbstractAsyncContextManager

from asyncio_throttle import Throttler

from lavabench.runner.gate import Gate, NoCap

_MIN_WINDOW_S = 0.05


class RateCap(Gate):
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


def rate_cap(rate_per_s: float | None) -> RateCap | NoCap:
    return RateCap(rate_per_s) if rate_per_s else NoCap()


class AllGates(Gate):
    """Passes when every gate has: the run's own cap, then the sweep's shared schedule.

    The shared gate goes last so that a permit from the account-wide schedule is used at
    once, not spent while this run waits on its own cap."""

    def __init__(self, *gates: AbstractAsyncContextManager[None]) -> None:
        self._gates = gates

    async def __aenter__(self) -> None:
        for gate in self._gates:
            async with gate:
                pass


ARRIVALS = ("closed", "constant", "poisson")


def arrival_offsets_s(
    arrival: str, rate_per_s: float | None, n: int, seed: int = 0
) -> list[float] | None:
    """Intended send time of each of `n` jobs, seconds after the run starts; None = closed.

    Pure and seeded, so a run's load shape can be reproduced and tested without a clock.
    Poisson: seeded exponential gaps, rescaled so that the n - 1 gaps end exactly at
    (n - 1) / rate, as in `constant`; the first job goes at 0. That is a Poisson process
    conditioned on its length (uniform spacings: gaps still CV ~1), whose realised rate is the
    requested one: raw draws are off by ~1/sqrt(n) (seed 0, 100 jobs at 10/s: -18%).
    """
    if arrival == "closed":
        return None
    if arrival not in ARRIVALS:
        raise ValueError(f"runner.arrival: expected one of {', '.join(ARRIVALS)}, got {arrival!r}")
    if not rate_per_s or rate_per_s <= 0:
        raise ValueError(f"runner.arrival={arrival} needs runner.rate > 0 (requests/s)")
    if arrival == "constant":
        return [i / rate_per_s for i in range(n)]
    rng = random.Random(seed)
    gaps = [rng.expovariate(rate_per_s) for _ in range(n - 1)]
    total = math.fsum(gaps)
    scale = (n - 1) / rate_per_s / total if total > 0 else 1.0
    offsets, t = [0.0], 0.0
    for gap in gaps:
        t += gap * scale
        offsets.append(t)
    return offsets[:n]
