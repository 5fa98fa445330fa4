"""Stream details through the real aiohttp wire to a scripted loopback server
(tests/fake_server.py): the shapes the simulator never sends. Each test failed before."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.runner.measure import build_record
from lavabench.runner.plan import plan_jobs
from lavabench.wire.client import HttpClient, Timeouts, WireRequest
from tests.fake_server import FakeServer, Reply, chunk, sse

MODEL = Model(name="m", id="accounts/fireworks/models/m", price=Price(Decimal("1"), Decimal("2")),
              context_length=8)  # fmt: skip
JOB = plan_jobs([MODEL], [Prompt("ds", "i0", (Message("user", "q"),), "42", "h0")])[0]
FINISH = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 5, "completion_tokens": 6}}  # fmt: skip


def _record(reply: Reply):
    async def go():
        async with FakeServer({"m": reply}) as server:
            client = HttpClient(max_connections=2, timeouts=Timeouts())
            try:
                body = b'{"model": "accounts/fireworks/models/m"}'
                return await client.send(WireRequest(server.url, {}, body, True))
            finally:
                await client.aclose()

    attempt = asyncio.run(go())
    record = build_record(JOB, attempt, run_id="r", endpoint="direct", origin_ns=attempt.send_ns,
                          max_tokens=16, stream=True, attempts=1, first_send_ns=attempt.send_ns,
                          retry_reasons=[], retry_waits_s=[], failed_attempts_s=[],
                          keep_text=True)  # fmt: skip
    return attempt, record


def test_a_lone_closing_think_tag_splits_reasoning_from_answer() -> None:
    # the template opened <think> in the prompt: the stream carries only the closing tag
    parts = sse(chunk("Let me"), chunk(" add.</th"), chunk("ink>"), chunk("\n\n"), chunk("42"),
                FINISH, "[DONE]")  # fmt: skip
    _attempt, rec = _record(Reply(parts=parts, gap_s=0.03))
    assert rec.response_text == "42"  # before: "Let me add.</think>\n\n42"
    assert (rec.reasoning_chunks, rec.content_chunks) == (4, 1)
    assert rec.first_reasoning_s == rec.ttft_s
    assert rec.first_answer_s - rec.first_reasoning_s >= 4 * 0.03 * 0.8  # the 5th chunk


def test_a_transition_chunk_adds_no_zero_length_gap() -> None:
    parts = sse(chunk(reasoning="hm"), chunk("4", reasoning="ok"), chunk("2"), FINISH, "[DONE]")
    _attempt, rec = _record(Reply(parts=parts, gap_s=0.02))
    gaps = [b - a for a, b in itertools.pairwise(rec.token_offsets_ns)]
    assert len(rec.token_offsets_ns) == 3 and min(gaps) > 5_000_000  # before: a 0 ns gap
    assert (rec.reasoning_chunks, rec.content_chunks) == (2, 2)


@pytest.mark.parametrize(
    ("frame", "kind"),
    [(b'{"error": {"type": "rate_limit_error", "message": "slow down"}}', "rate_limited"),
     (b'{"error": {"code": 503, "message": "overloaded"}}', "unavailable"),
     (b'{"type": "error", "error": {"type": "authentication_error", "message": "no"}}',
      "auth_failed"),
     (b'{"error": {"message": "something"}}', "stream_broken")],
)  # fmt: skip
def test_an_error_event_frame_is_an_error_of_its_kind(frame: bytes, kind: str) -> None:
    parts = (*sse(chunk("4")), b"event: error\ndata: " + frame + b"\n\n", *sse(FINISH, "[DONE]"))
    attempt, rec = _record(Reply(parts=parts))
    assert attempt.error is not None and attempt.error.kind == kind  # before: ok, answer "4"
    assert rec.status == "error" and rec.error_type == kind and rec.http_status == 200


def test_e2e_ends_at_done_and_the_close_is_kept_apart() -> None:
    _attempt, rec = _record(Reply(parts=sse(chunk("42"), FINISH, "[DONE]"), hold_s=0.3))
    assert rec.status == "ok"
    assert rec.e2e_close_s - rec.e2e_s >= 0.25  # before: e2e_s ran to the close
    assert rec.e2e_s < 0.25
