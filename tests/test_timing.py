"""Timing truth: client TTFT and ITL against the simulator's injected delays, over loopback.

The simulator runs in its own process with fixed delays (no jitter): 50 ms to the first
token, then 10 ms between tokens. Each row is matched to the simulator's planned delays by
completion id. The client's error also contains request transmission and the server's own
scheduling, so it is >= 0 and small; a harness whose loop is busy would show tens of ms.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from lavabench.catalog import Model, Price
from lavabench.client import HttpClient, Timeouts, WireRequest
from lavabench.datasets import Message, Prompt
from lavabench.pacing import NoCap
from lavabench.plan import plan_jobs
from lavabench.records import Record
from lavabench.retry import RetryPolicy
from lavabench.runner import Runner, RunSettings
from lavabench.wire import chat_body, forward_url

from .conftest import read_log, sim_settings

MODEL = "llama-v3p3-70b-instruct"


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Record] = []

    def write(self, record: Record) -> None:
        self.rows.append(record)


async def _run(base_url: str, model: Model, n: int, concurrency: int) -> list[Record]:
    prompts = [
        Prompt("timing", f"t{i}", (Message("user", f"Say something, {i}."),), None, f"h{i}")
        for i in range(n)
    ]
    url = forward_url(base_url)
    headers = {
        "authorization": "Bearer aks_test_timing0123456789",
        "content-type": "application/json",
    }

    def make_request(job):
        body = chat_body(model_id=job.model.id, messages=job.prompt.message_dicts(),
                         max_tokens=64, stream=True)  # fmt: skip
        return WireRequest(url, headers, body, True)

    client = HttpClient(max_connections=concurrency, timeouts=Timeouts())
    sink = ListSink()
    settings = RunSettings(run_id="timing", endpoint="sim", concurrency=concurrency, max_tokens=64,
                           stream=True, keep_text=False, retry=RetryPolicy(max_attempts=1))  # fmt: skip
    try:
        # warm the pool first: connection set-up is not what this test measures
        warm = Runner(
            settings, client=client, make_request=make_request, sink=ListSink(), rate=NoCap()
        )
        await warm.run(plan_jobs([model], prompts[:concurrency]))
        runner = Runner(settings, client=client, make_request=make_request, sink=sink, rate=NoCap())
        await runner.run(plan_jobs([model], prompts))
    finally:
        await client.aclose()
    return sink.rows


@pytest.mark.parametrize("concurrency", [32])
def test_ttft_and_itl_within_2ms_of_injected_delays(
    sim_defaults, sim_catalog, tmp_path, concurrency
):
    from lavabench.sim.process import running_simulator

    profiles = dict(sim_defaults["models"])
    profiles[MODEL] = {**profiles[MODEL], "ttft_s": 0.05, "tokens_per_s": 100.0, "jitter": 0.0,
                       "reasoning_style": "none", "default_output_tokens": 32}  # fmt: skip
    log = tmp_path / "log.jsonl"
    settings = sim_settings(sim_defaults, models=profiles, log_path=str(log))
    model = Model(
        name=MODEL,
        id=sim_catalog[MODEL]["id"],
        price=Price(Decimal(0), Decimal(0)),
        context_length=8,
    )
    with running_simulator(settings, sim_catalog) as sim:
        rows = asyncio.run(_run(sim.base_url, model, n=10 * concurrency, concurrency=concurrency))
    planned = {e["completion_id"]: e for e in read_log(log)}
    assert len(rows) == 10 * concurrency and all(r.status == "ok" for r in rows)

    ttft_err_ms = np.array(
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
    import os
    if os.environ.get("DEBUG_TIMING"):
        order = np.argsort([r.send_ns for r in rows])
        e = ttft_err_ms[order]
        print("by round", [round(float(e[i * 32:(i + 1) * 32].mean()), 1) for i in range(10)])
        print("worst", np.argsort(e)[-8:], np.sort(e)[-8:].round(1))
        print("headers", np.percentile([rows[i].headers_s * 1e3 for i in order], [50, 99, 100]))
    p50, p99 = np.percentile(ttft_err_ms, [50, 99])
    print(f"\nc={concurrency} TTFT error ms: p50 {p50:.2f} p99 {p99:.2f} max {ttft_err_ms.max():.2f}; "
          f"ITL error ms: p50 {np.median(itl_err_ms):.2f} p99 {np.percentile(itl_err_ms, 99):.2f}")  # fmt: skip
    assert ttft_err_ms.min() > -0.5  # never earlier than the server's delay (clock sanity)
    assert p50 < 2.0, f"median TTFT error {p50:.2f} ms"
    assert abs(np.median(itl_err_ms)) < 2.0, "median ITL error"
    assert abs(itl_err_ms.mean()) < 2.0, "mean ITL error"
    # the tail is reported, and bounded loosely: a busy loop would show tens of ms
    assert p99 < 10.0, f"p99 TTFT error {p99:.2f} ms"
    assert datetime.now(UTC) > rows[0].started_at
