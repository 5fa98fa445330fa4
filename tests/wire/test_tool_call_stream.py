"""Tool calls assembled from a stream split at hostile places, through the real HTTP stack.

A tiny aiohttp server on 127.0.0.1 writes the exact bytes given, flushing after each piece,
so a read can end inside a JSON string, inside a `\\uXXXX` escape (the escape sits in the
SSE bytes; the fragment boundary is *inside the argument text*), or between calls that are
interleaved by `index`. The client must come out with the same calls whatever the split.
"""

from __future__ import annotations

import asyncio
import json

import orjson
from aiohttp import web

from lavabench.wire.client import HttpClient, Timeouts, WireRequest
from lavabench.wire.protocol import parse_completion


def _event(delta: dict, finish: str | None = None) -> bytes:
    chunk = {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"  # json.dumps: \\u escapes on wire


def _call_start(index: int, call_id: str, name: str) -> bytes:
    fn = {"name": name, "arguments": ""}
    return _event({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                   "function": fn}]})  # fmt: skip


def _args(index: int, fragment: str) -> bytes:
    return _event({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}\n\n'
DONE = b"data: [DONE]\n\n"

# Two calls interleaved by index; the first's arguments hold "caf\u00e9 \u2603" and a quote.
ARGS_0 = json.dumps({"city": 'caf\u00e9 "\u2603"', "days": 3})  # ensure_ascii: \u00e9 on wire
ARGS_1 = json.dumps({"city": "Oslo", "unit": "celsius"})


def _pieces() -> list[bytes]:
    """Argument fragments cut inside a string and inside a \\u escape of the argument text."""
    cut_in_escape = ARGS_0.index("\\u00e9") + 3  # "...caf\u0" | "0e9..."
    cut_in_string = ARGS_1.index("Oslo") + 2  # "...Os" | "lo..."
    return [
        _event({"role": "assistant"}),
        _call_start(0, "call_a", "get_weather"),
        _call_start(1, "call_b", "get_weather"),
        _args(0, ARGS_0[:cut_in_escape]),
        _args(1, ARGS_1[:cut_in_string]),
        _args(0, ARGS_0[cut_in_escape:]),
        _args(1, ARGS_1[cut_in_string:]),
        _event({}, finish="tool_calls"),
        USAGE,
        DONE,
    ]


async def _serve_and_send(writes: list[bytes], stream: bool = True):
    async def handler(request: web.Request) -> web.StreamResponse:
        if not stream:
            return web.Response(body=writes[0], content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for piece in writes:
            await resp.write(piece)
            await asyncio.sleep(0.002)  # separate reads on the client side
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = HttpClient(max_connections=2, timeouts=Timeouts())
    try:
        return await client.send(WireRequest(f"http://127.0.0.1:{port}/v1/chat", {}, b"{}", stream))
    finally:
        await client.aclose()
        await runner.cleanup()


def _byte_splits(events: list[bytes], every: int) -> list[bytes]:
    body = b"".join(events)
    return [body[i : i + every] for i in range(0, len(body), every)]


def _assert_calls(attempt) -> None:
    assert attempt.ok, attempt.error
    calls = json.loads(attempt.result.tool_calls_json())
    assert [c["id"] for c in calls] == ["call_a", "call_b"]
    assert [c["name"] for c in calls] == ["get_weather", "get_weather"]
    assert json.loads(calls[0]["arguments"]) == {"city": 'caf\u00e9 "\u2603"', "days": 3}
    assert json.loads(calls[1]["arguments"]) == {"city": "Oslo", "unit": "celsius"}
    assert attempt.result.finish_reason == "tool_calls"


def test_interleaved_calls_with_cuts_inside_string_and_escape() -> None:
    attempt = asyncio.run(_serve_and_send(_pieces()))
    _assert_calls(attempt)
    # the first tool-call delta is the first output token: 6 deltas, each a timed chunk
    result = attempt.result
    assert result.content_chunks == 6 and len(result.token_times_ns) == 6
    assert result.first_answer_ns == result.token_times_ns[0]


def test_same_calls_when_the_bytes_arrive_in_odd_reads() -> None:
    # 7-byte reads cut SSE lines, JSON strings and the \\u escapes of the SSE payload itself
    attempt = asyncio.run(_serve_and_send(_byte_splits(_pieces(), 7)))
    _assert_calls(attempt)


def test_non_streaming_message_tool_calls() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": ARGS_0}},
        {"id": "call_b", "type": "function",
         "function": {"name": "get_weather", "arguments": ARGS_1}},
    ]}  # fmt: skip
    body = orjson.dumps({"id": "c1", "choices": [
        {"index": 0, "message": message, "finish_reason": "tool_calls"}]})  # fmt: skip
    attempt = asyncio.run(_serve_and_send([body], stream=False))
    _assert_calls(attempt)
    result, error = parse_completion(body)
    assert error is None and result.content_chunks == 1 and result.answer_text == ""


def test_malformed_arguments_are_kept_verbatim() -> None:
    pieces = [_call_start(0, "call_a", "f"), _args(0, '{"x": 1,'), _args(0, ' "y": '),
              _event({}, finish="tool_calls"), DONE]  # fmt: skip
    attempt = asyncio.run(_serve_and_send(pieces))
    assert attempt.ok
    calls = json.loads(attempt.result.tool_calls_json())
    assert calls == [{"id": "call_a", "name": "f", "arguments": '{"x": 1, "y": '}]
