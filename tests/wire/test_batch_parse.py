"""SSEDecoder.feed_objects (a read of whole one-line data events parsed in one go) gives
exactly what the event-by-event path gives, for any stream cut into any reads."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lavabench.wire import client as wire_client
from lavabench.wire.client import Attempt
from lavabench.wire.protocol import ChatStreamAccumulator, SSEDecoder

EVENTS = [
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Let"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":" me.</th"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"ink>\\n\\n42"}}]}\n\n',
    b'data: {"choices":[{"delta":{"reasoning_content":"hm","content":"x"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"<think>a"}}]}\n\n',
    b'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
    b'"completion_tokens":4}}\n\n',
    b'data: {"error":{"message":"overloaded","code":503}}\n\n',
    b'event: error\ndata: {"message":"boom"}\n\n',
    b"data: [1, 2]\n\n",
    b"data: {not json\n\n",
    b"data: \n\n",
    b": keep-alive\n\n",
    b'data: {"choices":[{"delta":{"content":"crlf"}}]}\r\n\r\n',
    b'data:{"choices":[{"delta":{"content":"nospace"}}]}\n\n',
    b"data: [DONE]\n\n",
    b'data: {"choices":[{"delta":{"content":"late"}}]}\n\n',
]


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _read(parts: list[bytes], *, batch: bool) -> dict[str, Any]:
    """_read_stream as it runs, or with feed_objects switched off (the per-event path)."""
    attempt = Attempt(send_ns=0, started_at=datetime.now(UTC))
    original = SSEDecoder.feed_objects
    if not batch:
        SSEDecoder.feed_objects = lambda self, chunk: None  # type: ignore[method-assign]
    try:
        clock = iter(range(1, 10_000))
        wire_client.time.perf_counter_ns, saved = (
            (lambda: next(clock)),
            wire_client.time.perf_counter_ns,
        )
        try:
            result = asyncio.run(wire_client._read_stream(_chunks(parts), attempt, lambda: None))
        finally:
            wire_client.time.perf_counter_ns = saved
    finally:
        SSEDecoder.feed_objects = original  # type: ignore[method-assign]
    error = None if attempt.error is None else (type(attempt.error).__name__, str(attempt.error))
    return {"result": asdict(result), "error": error}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(EVENTS))), min_size=1, max_size=10),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
)
def test_batched_reads_equal_the_event_by_event_path(picks: list[int], cuts: list[int]) -> None:
    stream = b"".join(EVENTS[i] for i in picks)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    parts = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    assert _read(parts, batch=True) == _read(parts, batch=False)


def test_a_read_of_whole_events_is_one_parse_and_anything_else_is_left_alone() -> None:
    one = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    objects, done = SSEDecoder().feed_objects(one * 3 + b"data: [DONE]\n\n")  # type: ignore[misc]
    assert [o["choices"][0]["delta"]["content"] for o in objects] == ["a"] * 3 and done
    assert SSEDecoder().feed_objects(b"data: [DONE]\n\n") == ([], True)
    for other in (one[:-1], b"data: [DONE]\n\n" + one, one + b'data: {"error": 1}\n\n',
                  b"event: x\n" + one, one.replace(b"\n", b"\r\n"), b"data: [1]\n\n"):  # fmt: skip
        assert SSEDecoder().feed_objects(other) is None
    pending = SSEDecoder()
    pending.feed(b"data: {")
    assert pending.feed_objects(one) is None  # the decoder holds half an event


def test_the_accumulator_applies_a_parsed_object_like_its_payload() -> None:
    payload = b'{"id":"c9","choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}'
    by_data, by_object = ChatStreamAccumulator(), ChatStreamAccumulator()
    by_data.on_data(payload, 7)
    by_object.on_object(orjson.loads(payload), 7)
    assert asdict(by_data.finish()) == asdict(by_object.finish())
