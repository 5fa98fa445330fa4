"""Is this run's measurement trustworthy? The samplers of the client's own health.

A client whose event loop is busy stamps tokens late and reports its own latency, not the
model's. `HealthMonitor` runs beside the Runner in the same loop and records:

- event-loop lag: a task sleeps `interval_s` (5 ms) and records how late it woke. A stall of
  B ms shows as a lag between B - 5 and B ms. 200 wake-ups/s cost ~0.2% of a core
  (`make bench` measures requests/s with it on and off);
- client CPU: `time.process_time()` over wall time, per second (1.0 = one core busy);
- requests in flight: time-weighted mean and max, against the configured concurrency.

`summary()` gives percentiles plus a per-second time series (capped: adjacent points merge
once it is full). records/verdict.py turns a summary into `valid` / `suspect` / `invalid`.
Stdlib only: this module sits on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from lavabench.records.verdict import HealthThresholds

NS_PER_MS = 1_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class InFlight:
    """Requests in flight, integrated over time (the Runner calls started/finished)."""

    def __init__(self, clock_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        self._clock = clock_ns
        self.count = 0
        self.max = 0
        self._area = 0.0  # request-ns
        self._since = clock_ns()
        self._start = self._since

    def _advance(self) -> None:
        now = self._clock()
        self._area += self.count * (now - self._since)
        self._since = now

    def started(self) -> None:
        self._advance()
        self.count += 1
        self.max = max(self.max, self.count)

    def finished(self) -> None:
        self._advance()
        self.count -= 1

    def take_area(self) -> tuple[float, int]:
        """(request-ns, ns) since the last call: one point of the time series."""
        self._advance()
        area, span = self._area, self._since - self._start
        self._area, self._start = 0.0, self._since
        return area, span


class HealthMonitor:
    """Lag, CPU and in-flight sampling for one run; `start()` in the loop, `await stop()`."""

    def __init__(self, thresholds: HealthThresholds | None = None) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.in_flight = InFlight()
        self._lags_us: array[int] = array("q")
        self._series: list[dict[str, float]] = []
        self._bucket_s = 1.0
        self._task: asyncio.Task[None] | None = None
        self._in_flight_area = 0.0
        self._span_ns = 0
        self._started_ns = 0
        self._cpu0 = 0.0
        self._elapsed_s = 0.0
        self._cpu_s = 0.0
        # 8 bytes a row (array of doubles), not a Python float object each: these grow with
        # the run (bench_memory: ~8 MB per 100k rows as lists)
        self._late_s = array("d")
        self._slot_wait_s = array("d")

    def start(self) -> None:
        self._started_ns = time.perf_counter_ns()
        self._cpu0 = time.process_time()
        self.in_flight.take_area()  # count from now
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._elapsed_s = (time.perf_counter_ns() - self._started_ns) / 1e9
        self._cpu_s = time.process_time() - self._cpu0
        area, span = self.in_flight.take_area()
        self._in_flight_area += area
        self._span_ns += span

    async def _sample(self) -> None:
        interval_ns = round(self.thresholds.sample_interval_ms * NS_PER_MS)
        interval_s = interval_ns / 1e9
        clock, sleep, lags = time.perf_counter_ns, asyncio.sleep, self._lags_us
        point_at = clock() + 1_000_000_000
        point_lag = 0
        cpu_at, wall_at = time.process_time(), clock()
        while True:
            due = clock() + interval_ns
            await sleep(interval_s)
            now = clock()
            lag = max(0, now - due) // 1000
            lags.append(lag)
            point_lag = max(point_lag, lag)
            if now >= point_at:
                cpu = time.process_time()
                area, span = self.in_flight.take_area()
                self._in_flight_area += area
                self._span_ns += span
                self._add_point(
                    {
                        "t_s": round((now - self._started_ns) / 1e9, 3),
                        "lag_max_ms": point_lag / 1000,
                        "cpu": round((cpu - cpu_at) / max((now - wall_at) / 1e9, 1e-9), 3),
                        "in_flight_mean": round(area / max(span, 1), 2),
                        "in_flight_now": self.in_flight.count,
                    }
                )
                cpu_at, wall_at, point_lag = cpu, now, 0
                point_at = now + 1_000_000_000

    def _add_point(self, point: dict[str, float]) -> None:
        """Append one per-second point; past the cap, merge neighbours (width doubles)."""
        self._series.append(point)
        if len(self._series) <= self.thresholds.series_points:
            return
        merged = []
        for a, b in zip(self._series[0::2], self._series[1::2], strict=False):
            merged.append(
                {
                    "t_s": b["t_s"],
                    "lag_max_ms": max(a["lag_max_ms"], b["lag_max_ms"]),
                    "cpu": round((a["cpu"] + b["cpu"]) / 2, 3),
                    "in_flight_mean": round((a["in_flight_mean"] + b["in_flight_mean"]) / 2, 2),
                    "in_flight_now": b["in_flight_now"],
                }
            )
        if len(self._series) % 2:
            merged.append(self._series[-1])
        self._series = merged
        self._bucket_s *= 2

    def tap(self, forward: Any = None) -> RecordTap:
        """An observer for the Runner: notes each row's dispatch times, then forwards it."""
        return RecordTap(self, forward)

    def note(self, record: Any) -> None:
        if record.dispatch_late_s is not None:
            self._late_s.append(record.dispatch_late_s)
            self._slot_wait_s.append(record.slot_wait_s or 0.0)

    def dispatch(self) -> dict[str, float]:
        return dispatch_summary(self._late_s, self._slot_wait_s)

    def summary(self, *, concurrency: int) -> dict[str, Any]:
        """JSON-able figures for run.json / Parquet metadata (call after `stop()`)."""
        lags_ms = [v / 1000 for v in self._lags_us]
        mean_in_flight = self._in_flight_area / self._span_ns if self._span_ns else 0.0
        return {
            "sample_interval_ms": self.thresholds.sample_interval_ms,
            "lag_samples": len(lags_ms),
            "lag_ms": {
                "p50": round(percentile(lags_ms, 0.50), 3),
                "p90": round(percentile(lags_ms, 0.90), 3),
                "p99": round(percentile(lags_ms, 0.99), 3),
                "max": round(max(lags_ms, default=0.0), 3),
            },
            "cpu": {
                "mean": round(self._cpu_s / self._elapsed_s, 3) if self._elapsed_s else 0.0,
                "p90_per_s": round(percentile([p["cpu"] for p in self._series], 0.90), 3),
                "cpu_s": round(self._cpu_s, 3),
            },
            "in_flight": {
                "mean": round(mean_in_flight, 2),
                "max": self.in_flight.max,
                "concurrency": concurrency,
            },
            "elapsed_s": round(self._elapsed_s, 3),
            "series_bucket_s": self._bucket_s,
            "series": self._series,
        }


class RecordTap:
    """Runner observer: the monitor sees every row, then the next observer (progress)."""

    def __init__(self, monitor: HealthMonitor, forward: Any = None) -> None:
        self._monitor = monitor
        self._forward = forward

    def on_record(self, record: Any) -> None:
        self._monitor.note(record)
        if self._forward is not None:
            self._forward.on_record(record)


def dispatch_summary(late_s: Sequence[float], slot_wait_s: Sequence[float]) -> dict[str, float]:
    """Dispatch lateness and slot wait over the run's rows (seconds in, ms out)."""
    return {
        "late_mean_ms": round(sum(late_s) / len(late_s) * 1e3, 3) if late_s else 0.0,
        "late_p99_ms": round(percentile(late_s, 0.99) * 1e3, 3),
        "slot_wait_mean_ms": (
            round(sum(slot_wait_s) / len(slot_wait_s) * 1e3, 3) if slot_wait_s else 0.0
        ),
        "requests": len(late_s),
    }
