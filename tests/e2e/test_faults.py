"""The fault matrix: every simulator fault x streaming and non-streaming, through real HTTP.

Each transient fault is injected on the first two sightings of a request (`fail_first: 2`),
so a correct client records exactly 3 attempts, the right error kind for the two failures,
waits of at least the server's Retry-After, and a good final answer. Auth and billing
faults stop the run after one attempt.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.records.schema import Record
from lavabench.runner.gate import NoCap
from lavabench.runner.loop import Runner, RunOutcome, RunSettings
from lavabench.runner.plan import plan_jobs
from lavabench.runner.retry import RetryPolicy
from lavabench.sim.faults import FAULT_KINDS
from lavabench.wire.client import HttpClient, Timeouts, WireRequest
from lavabench.wire.protocol import chat_body, forward_url
from tests.conftest import sim_settings

MODEL = "llama-v3p3-70b-instruct"
RETRY_AFTER_S = 0.3
# (kind, error recorded for the failed attempts, stream) -> expected retry reason prefix
TRANSIENT = {
    "rate_limit": ("rate_limited:429", "rate_limited:429"),
    "rate_limit_http_date": ("rate_limited:429", "rate_limited:429"),
    "server_error": ("unavailable:5", "unavailable:5"),
    "reset_before_headers": ("unavailable:-", "unavailable:-"),
    "disconnect_mid_stream": ("stream_broken:200", "stream_broken:200"),
    "no_done": ("stream_broken:200", "stream_broken:200"),
    "malformed_json": ("stream_broken:200", "stream_broken:200"),
    "stall": ("stream_broken:200", "unavailable:-"),  # non-streaming: silence before headers
    "slow_first_token": ("unavailable:200", "unavailable:-"),
    "error_mid_stream": ("stream_broken:200", "stream_broken:200"),
}
FATAL = {
    "insufficient_balance": ("insufficient_balance", 402),
    "unauthorized": ("auth_failed", 401),
}


def test_matrix_covers_every_fault_kind() -> None:
    assert set(TRANSIENT) | set(FATAL) == set(FAULT_KINDS)


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Record] = []

    def write(self, record: Record) -> None:
        self.rows.append(record)


async def _one(base_url: str, model_id: str, stream: bool) -> tuple[RunOutcome, Record]:
    model = Model(name=MODEL, id=model_id, price=Price(Decimal(1), Decimal(1)), context_length=8)
    prompt = Prompt("faults", f"s{stream}", (Message("user", f"fault probe {stream}"),), None, "h")
    url = forward_url(base_url)
    headers = {"authorization": "Bearer aks_test_faults0123456789"}

    def make_request(job):
        body = chat_body(model_id=model_id, messages=job.prompt.message_dicts(), max_tokens=16,
                         stream=stream)  # fmt: skip
        return WireRequest(url, headers, body, stream)

    client = HttpClient(
        max_connections=2,
        timeouts=Timeouts(connect_s=2, first_token_s=0.5, read_s=0.5, total_s=10),
    )
    retry = RetryPolicy(max_attempts=4, backoff_base_s=0.01, backoff_cap_s=0.05,
                        retry_after_cap_s=3.0, jitter=False)  # fmt: skip
    settings = RunSettings(run_id="faults", endpoint="sim", concurrency=1, max_tokens=16,
                           stream=stream, keep_text=True, retry=retry)  # fmt: skip
    sink = ListSink()
    try:
        runner = Runner(settings, client=client, make_request=make_request, sink=sink, rate=NoCap())
        outcome = await runner.run(plan_jobs([model], [prompt]))
    finally:
        await client.aclose()
    (row,) = sink.rows
    return outcome, row


def _sim(kind: str, sim_defaults: dict[str, Any]) -> dict[str, Any]:
    profiles = dict(sim_defaults["models"])
    profiles[MODEL] = {**profiles[MODEL], "ttft_s": 0.01, "tokens_per_s": 1000.0, "jitter": 0.0,
                       "reasoning_style": "none", "default_output_tokens": 8}  # fmt: skip
    faults = {"seed": 1, "probabilities": {kind: 1.0}, "fail_first": 2,
              "retry_after_s": RETRY_AFTER_S, "stall_s": 1.0, "slow_first_token_s": 1.0}  # fmt: skip
    return sim_settings(sim_defaults, models=profiles, faults=faults)


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_transient_fault_is_retried_then_succeeds(kind, sim_defaults, sim_catalog) -> None:
    from lavabench.sim.process import running_simulator

    with running_simulator(_sim(kind, sim_defaults), sim_catalog) as sim:
        for stream, expected in zip((True, False), TRANSIENT[kind], strict=True):
            outcome, row = asyncio.run(_one(sim.base_url, sim_catalog[MODEL]["id"], stream))
            label = f"{kind} stream={stream}"
            assert outcome.fatal is None, label
            assert row.status == "ok" and row.attempts == 3, (label, row.error_message)
            assert len(row.retry_reasons) == 2, label
            for reason in row.retry_reasons:
                assert reason.startswith(expected), (label, row.retry_reasons)
            assert len(row.failed_attempts_s) == 2 and len(row.retry_waits_s) == 2
            if kind.startswith("rate_limit") or (
                kind == "server_error" and "503" in str(row.retry_reasons)
            ):
                assert all(w >= RETRY_AFTER_S for w in row.retry_waits_s), (
                    label,
                    row.retry_waits_s,
                )
            assert row.completion_tokens == 8 and row.cost_pico_usd is not None, label
            # the final attempt's timing only: no retry leaks into the latency
            assert row.e2e_s is not None and row.e2e_s < 0.5, (label, row.e2e_s)


@pytest.mark.parametrize("kind", sorted(FATAL))
def test_auth_and_billing_faults_stop_the_run_after_one_attempt(
    kind, sim_defaults, sim_catalog
) -> None:
    from lavabench.sim.process import running_simulator

    error_type, status = FATAL[kind]
    with running_simulator(_sim(kind, sim_defaults), sim_catalog) as sim:
        for stream in (True, False):
            outcome, row = asyncio.run(_one(sim.base_url, sim_catalog[MODEL]["id"], stream))
            assert outcome.fatal is not None and outcome.fatal.kind == error_type
            assert row.status == "error" and row.error_type == error_type
            assert row.attempts == 1 and row.http_status == status and row.retry_reasons == []
