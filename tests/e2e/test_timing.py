"""Timing truth: client TTFT and ITL against the simulator's injected delays, over loopback.

The simulator runs in its own process: 50 ms to the first token, then 10 ms between tokens,
each drawn with 10% lognormal jitter (logged per request). Each row is matched to the
simulator's log by completion id: TTFT against the moment the simulator actually wrote the
first token (`sent_ttft_s`), ITL against the planned gaps. (With no jitter all 32 streams' tokens land in the same
millisecond: the hardest case for the client's event loop, kept for `make bench`.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest
import uvloop

from bench.bench_client import MODEL, drive
from tests.conftest import read_log, sim_settings

# Per-request jitter as real traffic has (and the simulator's defaults). With none, all 32
# streams are phase-locked and tokens land in the same millisecond: that worst case is
# measured and reported by `make bench` (bench/results/latest.md), not asserted here.
JITTER = 0.1


@pytest.mark.parametrize("concurrency", [32])
def test_ttft_and_itl_within_2ms_of_injected_delays(
    sim_defaults, sim_catalog, tmp_path, concurrency
):
    from lavabench.sim.process import running_simulator

    profiles = dict(sim_defaults["models"])
    profiles[MODEL] = {**profiles[MODEL], "ttft_s": 0.05, "tokens_per_s": 100.0, "jitter": JITTER,
                       "reasoning_style": "none", "default_output_tokens": 32}  # fmt: skip
    log = tmp_path / "log.jsonl"
    settings = sim_settings(sim_defaults, models=profiles, log_path=str(log))
    # the same event loop `lavabench run` uses
    with (
        running_simulator(settings, sim_catalog) as sim,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop,
    ):
        rows, _wall, _cpu = loop.run(
            drive(
                sim.base_url, sim_catalog[MODEL]["id"], n=10 * concurrency, concurrency=concurrency
            )
        )
    planned = {e["completion_id"]: e for e in read_log(log)}
    assert len(rows) == 10 * concurrency and all(r.status == "ok" for r in rows)

    # The client's error, on the one monotonic clock both processes read: when it stamped
    # the first token minus when the simulator wrote it (bench/bench_client.py says why not
    # "client TTFT - server TTFT": that adds the request's wait in the simulator's loop).
    ttft_err_ms = np.array([
        (rows.origin_ns + r.first_token_ns) / 1e6
        - (planned[r.response_id]["received_mono_s"] + planned[r.response_id]["sent_ttft_s"]) * 1e3
        for r in rows
    ])  # fmt: skip
    vs_plan_ms = np.array(
        [(r.ttft_s - planned[r.response_id]["planned_ttft_s"]) * 1e3 for r in rows]
    )
    itl_err_ms = np.concatenate(
        [
            np.diff(np.array(r.token_offsets_ns) / 1e6)
            - np.array(planned[r.response_id]["planned_itl_s"]) * 1e3
            for r in rows
        ]
    )
    assert all(len(r.token_offsets_ns) == 32 for r in rows)
    p50, p99 = np.percentile(ttft_err_ms, [50, 99])
    print(f"\nc={concurrency} TTFT error vs planned ms: p50 {np.median(vs_plan_ms):.2f}")
    print(f"c={concurrency} TTFT error ms: p50 {p50:.2f} p99 {p99:.2f} max {ttft_err_ms.max():.2f}; "
          f"ITL error ms: p50 {np.median(itl_err_ms):.2f} p99 {np.percentile(itl_err_ms, 99):.2f}")  # fmt: skip
    assert ttft_err_ms.min() > 0  # never before the server wrote it (clock sanity)
    assert abs(np.median(vs_plan_ms)) < 3.0, "the simulator kept its plan"
    assert p50 < 2.0, f"median TTFT error {p50:.2f} ms"
    assert abs(np.median(itl_err_ms)) < 2.0, "median ITL error"
    assert abs(itl_err_ms.mean()) < 2.0, "mean ITL error"
    # the tail is reported, and bounded loosely: a busy loop would show tens of ms
    assert p99 < 5.0, f"p99 TTFT error {p99:.2f} ms"
    assert datetime.now(UTC) > rows[0].started_at
