"""Health samplers, verdict and load shapes: the lag sampler against an injected stall, and
dispatch lateness / slot wait under a virtual clock (no real time passes, nothing patched)."""

from __future__ import annotations

import asyncio
import selectors
import time
from decimal import Decimal
from typing import Any

import pytest
import uvloop

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.load.pacing import arrival_offsets_s
from lavabench.records.verdict import HealthThresholds, verdict
from lavabench.runner.gate import NoCap
from lavabench.runner.health import HealthMonitor, InFlight
from lavabench.runner.loop import Runner, RunSettings
from lavabench.runner.plan import plan_jobs
from lavabench.runner.retry import RetryPolicy
from lavabench.wire.client import Attempt, WireRequest
from lavabench.wire.protocol import StreamResult

# --- the lag sampler --------------------------------------------------------------------


def test_lag_sampler_reports_an_injected_50ms_block_within_5ms() -> None:
    async def go() -> dict[str, Any]:
        monitor = HealthMonitor()
        monitor.start()
        await asyncio.sleep(0.1)
        time.sleep(0.050)  # the loop is blocked: no timer can fire
        await asyncio.sleep(0.1)
        await monitor.stop()
        return monitor.summary(concurrency=1)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        summary = runner.run(go())
    assert 45.0 <= summary["lag_ms"]["max"] <= 55.0, summary["lag_ms"]
    assert summary["lag_ms"]["p50"] < 2.0  # the rest of the time the loop was idle
    assert summary["lag_samples"] >= 20


def test_in_flight_is_time_weighted() -> None:
    now = [0]
    flight = InFlight(lambda: now[0])
    flight.started()  # 1 in flight for 1 s, then 3 for 1 s
    now[0] = 1_000_000_000
    flight.started()
    flight.started()
    now[0] = 2_000_000_000
    area, span = flight.take_area()
    assert area / span == pytest.approx(2.0) and flight.max == 3


# --- the verdict -------------------------------------------------------------------------


def _summary(lag_p99: float = 1.0, cpu: float = 0.2, late: float = 0.5) -> dict[str, Any]:
    return {
        "lag_ms": {"p50": 0.2, "p90": 0.5, "p99": lag_p99, "max": lag_p99 * 1.2},
        "cpu": {"mean": cpu},
        "in_flight": {"mean": 15.0, "max": 16, "concurrency": 16},
        "dispatch": {"late_mean_ms": late, "requests": 100},
    }


def test_verdict_names_each_cause_with_numbers_and_remedy() -> None:
    t = HealthThresholds()
    assert verdict(_summary(), t) == {"status": "valid", "causes": []}
    v = verdict(_summary(lag_p99=14.0), t)
    assert v["status"] == "suspect"
    assert "event-loop lag p99 14.0 ms" in v["causes"][0]["message"]
    assert "runner.concurrency" in v["causes"][0]["remedy"]
    v = verdict(_summary(lag_p99=60.0, cpu=0.99, late=40.0), t, open_loop=True)
    assert v["status"] == "invalid"
    assert {c["metric"] for c in v["causes"]} == {
        "event_loop_lag_p99_ms", "client_cpu", "dispatch_late_mean_ms"
    }  # fmt: skip
    late = next(c for c in v["causes"] if c["metric"] == "dispatch_late_mean_ms")
    assert late["severity"] == "suspect" and "rate was not met" in late["message"]
    low = {**_summary(), "in_flight": {"mean": 3.0, "max": 16, "concurrency": 16}}
    assert verdict(low, t)["status"] == "valid"  # few jobs: a low mean is expected
    assert verdict(low, t, saturating_jobs=True)["causes"][0]["metric"] == "in_flight_ratio"


# --- load shapes -------------------------------------------------------------------------


def test_arrival_offsets() -> None:
    assert arrival_offsets_s("closed", None, 5) is None
    assert arrival_offsets_s("constant", 4.0, 3) == [0.0, 0.25, 0.5]
    poisson = arrival_offsets_s("poisson", 100.0, 4000, seed=7)
    assert poisson == arrival_offsets_s("poisson", 100.0, 4000, seed=7)  # seeded
    assert poisson != arrival_offsets_s("poisson", 100.0, 4000, seed=8)
    assert poisson[-1] / 3999 == pytest.approx(0.01, rel=0.05)  # mean gap 1/rate
    with pytest.raises(ValueError, match=r"runner\.rate"):
        arrival_offsets_s("poisson", None, 3)


class _InstantSelector(selectors.DefaultSelector):
    """Never waits: a timeout advances the loop's virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> Any:
        if timeout is not None and timeout > 0:
            self.now += timeout
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """asyncio.sleep runs in virtual time: seconds of load shape take microseconds."""

    def __init__(self) -> None:
        self._selector_v = _InstantSelector()
        super().__init__(self._selector_v)

    def time(self) -> float:
        return self._selector_v.now


SERVICE_S = 0.05


class VirtualClient:
    """Every request takes SERVICE_S of virtual time; stamps with the same virtual clock."""

    def __init__(self, clock_ns: Any) -> None:
        self._clock = clock_ns

    async def send(self, request: WireRequest) -> Attempt:
        from datetime import UTC, datetime

        attempt = Attempt(send_ns=self._clock(), started_at=datetime.now(UTC))
        await asyncio.sleep(SERVICE_S)
        attempt.http_status = 200
        attempt.result = StreamResult(done=True, finish_reason="stop")
        attempt.end_ns = self._clock()
        return attempt


def _run_virtual(arrivals: list[float] | None, concurrency: int, n: int) -> list[Any]:
    loop = VirtualTimeLoop()
    clock = lambda: round(loop.time() * 1e9)  # noqa: E731
    model = Model(name="m", id="m", price=Price(Decimal(1), Decimal(1)), context_length=8)
    prompts = [Prompt("d", f"i{i}", (Message("user", "q"),), None, f"h{i}") for i in range(n)]
    rows: list[Any] = []

    class Sink:
        def write(self, record: Any) -> None:
            rows.append(record)

    settings = RunSettings(run_id="v", endpoint="sim", concurrency=concurrency, max_tokens=8,
                           stream=True, keep_text=False, retry=RetryPolicy(max_attempts=1))  # fmt: skip

    async def go() -> None:
        runner = Runner(
            settings, client=VirtualClient(clock), sink=Sink(), rate=NoCap(),
            make_request=lambda j: WireRequest("u", {}, b"", True),
            clock_ns=clock, arrivals_s=arrivals,
        )  # fmt: skip
        await runner.run(plan_jobs([model], prompts))

    try:
        loop.run_until_complete(go())
    finally:
        loop.close()
    return sorted(rows, key=lambda r: r.intended_send_ns)


def _expected(arrivals: list[float], concurrency: int) -> tuple[list[float], list[float]]:
    """Lateness and slot wait of an ideal dispatcher: FIFO onto the first free slot."""
    free = [0.0] * concurrency
    late = []
    for t in arrivals:
        slot = min(range(concurrency), key=free.__getitem__)
        start = max(t, free[slot])
        free[slot] = start + SERVICE_S
        late.append(start - t)
    return late, late  # no other wait in virtual time: all lateness is slot wait


@pytest.mark.parametrize("shape", ["constant", "poisson"])
@pytest.mark.parametrize("concurrency", [2, 64])
def test_dispatch_lateness_and_slot_wait_under_a_virtual_clock(shape: str, concurrency: int):
    n, rate = 40, 100.0  # 100/s against 2 slots x 20/s: lateness grows; 64 slots: none
    arrivals = arrival_offsets_s(shape, rate, n, seed=3)
    assert arrivals is not None
    rows = _run_virtual(arrivals, concurrency, n)
    late, slot = _expected(arrivals, concurrency)
    assert [r.intended_send_ns for r in rows] == [round(a * 1e9) for a in arrivals]
    assert [r.dispatch_late_s for r in rows] == pytest.approx(late, abs=1e-6)
    assert [r.slot_wait_s for r in rows] == pytest.approx(slot, abs=1e-6)
    assert all(r.rate_wait_s == 0 for r in rows)
    if concurrency == 64:
        assert max(r.dispatch_late_s for r in rows) < 1e-6
    else:
        assert rows[-1].dispatch_late_s > 0.3  # the requested rate was not met


def test_closed_loop_slot_wait_and_no_lateness_under_a_virtual_clock() -> None:
    rows = _run_virtual(None, 2, 6)
    # jobs 0,1 go at once; the dispatcher then waits 50 ms for a slot for job 2 (job 3 is
    # taken up only then and finds the second freed slot at once), and again for job 4
    assert [r.slot_wait_s for r in rows] == pytest.approx([0, 0, 0.05, 0, 0.05, 0], abs=1e-6)
    assert [r.dispatch_late_s for r in rows] == pytest.approx([0.0] * 6, abs=1e-6)
    assert [r.intended_send_ns for r in rows] == [0, 0, 50_000_000, 50_000_000, 100_000_000,
                                                  100_000_000]  # fmt: skip
