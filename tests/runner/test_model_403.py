"""A 403 that says "this model is not available to you" pauses that model, not the run;
other 403s still stop the run. Real aiohttp wire to a scripted loopback server (Fireworks'
error envelope), since the simulator has no per-model 403."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.runner.gate import NoCap
from lavabench.runner.loop import Runner, RunSettings
from lavabench.runner.plan import plan_jobs
from lavabench.runner.retry import RetryPolicy
from lavabench.wire.client import HttpClient, Timeouts, WireRequest
from tests.fake_server import FakeServer, Reply, chunk, sse
from tests.runner.test_runner import ListSink

MODELS = [Model(name=n, id=f"accounts/fireworks/models/{n}", price=Price(Decimal("1"), Decimal("2")),
                context_length=8) for n in ("a", "b")]  # fmt: skip
PROMPTS = [Prompt("ds", f"i{i}", (Message("user", f"q{i}"),), "1", f"h{i}") for i in range(4)]
OK = Reply(parts=sse(chunk("1"), {"id": "c1", "choices": [{"index": 0, "delta": {},
           "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
           "[DONE]"))  # fmt: skip


def _forbidden(message: str) -> Reply:
    body = {"error": {"object": "error", "type": "permission_denied", "code": "403",
                      "message": message}, "request_id": "x"}  # fmt: skip
    return Reply(status=403, parts=(json.dumps(body).encode(),), content_type="application/json")


def _run(replies: dict[str, Reply]):
    sink = ListSink()

    async def go():
        async with FakeServer(replies) as server:
            client = HttpClient(max_connections=2, timeouts=Timeouts())
            settings = RunSettings(run_id="r", endpoint="direct", concurrency=1, max_tokens=8,
                                   stream=True, keep_text=True, retry=RetryPolicy())  # fmt: skip

            def make(job):
                body = json.dumps({"model": job.model.id}).encode()
                return WireRequest(server.url, {}, body, True)

            runner = Runner(settings, client=client, make_request=make, sink=sink, rate=NoCap())
            try:
                return await runner.run(plan_jobs(MODELS, PROMPTS)), server.seen
            finally:
                await client.aclose()

    outcome, seen = asyncio.run(go())
    return outcome, sink.rows, seen


def test_a_403_for_one_model_pauses_it_and_the_others_finish() -> None:
    refusal = _forbidden("Model accounts/fireworks/models/a is not available to your account")
    outcome, rows, seen = _run({"a": refusal, "b": OK})
    assert outcome.fatal is None  # before: auth_failed stopped the run after one row of b
    assert "a" in outcome.circuit_open and outcome.skipped["a"] == 3
    b_rows = [r for r in rows if r.model == "b"]
    assert len(b_rows) == 4 and all(r.status == "ok" for r in b_rows)
    (a_row,) = [r for r in rows if r.model == "a"]
    assert a_row.error_type == "model_unavailable" and a_row.attempts == 1
    assert seen.count("accounts/fireworks/models/a") == 1  # never retried, then not sent


def test_a_403_about_the_credential_still_stops_the_run() -> None:
    outcome, rows, _seen = _run({"a": _forbidden("Forbidden: invalid API key"), "b": OK})
    assert outcome.fatal is not None and outcome.fatal.kind == "auth_failed"
    assert len(rows) <= 2
