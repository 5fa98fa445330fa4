"""The aiohttp wire's deadlines (`read_s`, the first-token limit, `total_s`): one watchdog
task, not aiohttp's per-read timer nor a timer per request (wire/client.py). Through the
real wire to a scripted loopback server (tests/fake_server.py)."""

from __future__ import annotations

import asyncio
import time

from lavabench.errors import StreamBroken, Unavailable
from lavabench.wire.client import HttpClient, Timeouts, WireRequest
from tests.fake_server import FakeServer, Reply, chunk, sse

BODY = b'{"model": "accounts/fireworks/models/m"}'


def _send(reply: Reply, read_s: float, **limits: float):
    timeouts = Timeouts(read_s=read_s, **{"total_s": 10, **limits})

    async def go():
        async with FakeServer({"m": reply}) as server:
            client = HttpClient(max_connections=2, timeouts=timeouts)
            try:
                t0 = time.perf_counter()
                attempt = await client.send(WireRequest(server.url, {}, BODY, True))
                return attempt, time.perf_counter() - t0
            finally:
                await client.aclose()

    return asyncio.run(go())


def test_a_stream_silent_for_longer_than_read_s_is_ended_as_stalled() -> None:
    # two tokens, then 3 s of silence: ended within read_s + read_s / 4 of the last read
    reply = Reply(parts=sse(chunk("4"), chunk("2")), hold_s=3.0)
    attempt, took_s = _send(reply, read_s=0.2)
    assert isinstance(attempt.error, StreamBroken), attempt.error
    assert attempt.error.message == "stream stalled (no data for 0.2 s)"
    assert attempt.result is not None and attempt.result.answer_text == "42"  # kept
    assert 0.2 <= took_s < 1.5


def test_gaps_shorter_than_read_s_are_not_a_stall() -> None:
    parts = sse(chunk("a"), chunk("b"), chunk("c"), chunk("d"), "[DONE]")
    attempt, _ = _send(Reply(parts=parts, gap_s=0.15), read_s=0.3)  # 0.6 s in all
    assert attempt.error is None, attempt.error
    assert attempt.result is not None and attempt.result.answer_text == "abcd"


def test_no_first_token_within_the_limit_ends_the_attempt_though_bytes_arrive() -> None:
    # headers and a keep-alive comment (bytes, so no stall), then no token for 3 s
    reply = Reply(parts=(b": keep-alive\n\n",), hold_s=3.0)
    attempt, took_s = _send(reply, read_s=5.0, first_token_s=0.3)
    assert isinstance(attempt.error, Unavailable), attempt.error
    assert attempt.error.message == "no first token within 0.3 s"
    assert 0.3 <= took_s < 1.2


def test_a_stream_still_sending_at_total_s_is_ended_with_what_arrived() -> None:
    # a token every 50 ms for 2 s, never silent, first token at once: only total_s ends it
    parts = sse(*[chunk("a") for _ in range(40)], "[DONE]")
    attempt, took_s = _send(Reply(parts=parts, gap_s=0.05), read_s=5.0, total_s=0.4)
    assert isinstance(attempt.error, StreamBroken), attempt.error
    assert attempt.error.message == "response not complete within 0.4 s"
    assert attempt.result is not None and 0 < len(attempt.result.answer_text) < 40
    assert 0.4 <= took_s < 1.3
