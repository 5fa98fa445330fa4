"""client.py: status and failure classification, stream reading (httpx.MockTransport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lavabench.wire.client import HttpClient, Timeouts, WireRequest, classify_response

SSE_OK = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"4"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":1},'
    b'"perf_metrics":{"server-time-to-first-token":"0.25"}}\n\n'
    b"data: [DONE]\n\n"
)


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in several reads, like a real socket (split mid-event)."""

    def __init__(self, body: bytes, size: int = 37) -> None:
        self.parts = [body[i : i + size] for i in range(0, len(body), size)]

    async def __aiter__(self):
        for part in self.parts:
            yield part


def _response(status: int, body: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, stream=Chunks(body), headers=headers)


def _send(handler, stream: bool = True):
    async def go():
        client = HttpClient(
            max_connections=4, timeouts=Timeouts(), transport=httpx.MockTransport(handler)
        )
        try:
            return await client.send(WireRequest("http://sim.test/v1/chat", {}, b"{}", stream))
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_successful_stream_is_parsed_and_stamped() -> None:
    attempt = _send(lambda r: _response(200, SSE_OK, {"x-lava-request-id": "req_1"}))
    assert attempt.ok and attempt.http_status == 200 and attempt.lava_request_id == "req_1"
    assert attempt.result.answer_text == "4"
    assert attempt.result.usage == {"prompt_tokens": 9, "completion_tokens": 1}
    assert (
        attempt.send_ns <= attempt.headers_ns <= attempt.result.token_times_ns[0] <= attempt.end_ns
    )


def test_stream_without_done_is_an_error_not_a_success() -> None:
    truncated = SSE_OK.replace(b"data: [DONE]\n\n", b"")
    attempt = _send(lambda r: _response(200, truncated))
    assert attempt.error is not None and attempt.error.kind == "stream_broken"
    assert "[DONE]" in attempt.error.message


def test_error_object_after_200_is_stream_broken() -> None:
    body = SSE_OK.split(b"\n\n")[0] + b'\n\ndata: {"error": {"message": "boom"}}\n\n'
    attempt = _send(lambda r: _response(200, body))
    assert attempt.error.kind == "stream_broken" and "boom" in attempt.error.message


def test_connection_error_before_headers_is_unavailable() -> None:
    def handler(request):
        raise httpx.ConnectError("refused")

    attempt = _send(handler)
    assert attempt.error.kind == "unavailable" and attempt.http_status is None


def test_non_streaming_body() -> None:
    body = b'{"id":"c2","choices":[{"message":{"content":"7"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}'
    attempt = _send(lambda r: _response(200, body), stream=False)
    assert attempt.ok and attempt.result.answer_text == "7"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth_failed"), (403, "auth_failed"), (402, "insufficient_balance"), (429, "rate_limited"),
     (408, "unavailable"), (409, "unavailable"), (500, "unavailable"), (503, "unavailable"),
     (400, "bad_request"), (404, "bad_request"), (422, "bad_request")],
)  # fmt: skip
def test_status_classification(status: int, kind: str) -> None:
    err = classify_response(status, b'{"error": {"message": "m"}}', {"retry-after": "2"})
    assert err.kind == kind and err.http_status == status
    if kind in ("rate_limited", "unavailable"):
        assert err.retry_after_s == 2.0


def test_error_body_through_client_keeps_status_and_message() -> None:
    body = b'{"error": "Too Many Requests", "message": "slow"}'
    attempt = _send(lambda r: _response(429, body, {"retry-after": "3"}))
    assert attempt.error.kind == "rate_limited" and attempt.error.retry_after_s == 3.0
    assert "Too Many Requests" in attempt.error.message and attempt.http_status == 429


def test_default_wire_is_aiohttp_and_streams_from_the_real_simulator(running_sim) -> None:
    # The default must stay the fast path: httpx's own pool costs ~10x the CPU per request at
    # c>=64 and turns TTFT into queueing (performance-notes.md). This test notices a change.
    from lavabench.wire.protocol import chat_body, forward_url

    base_url, _log = running_sim
    body = chat_body(model_id="accounts/fireworks/models/gpt-oss-20b",
                     messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=32,
                     stream=True)  # fmt: skip
    headers = {"authorization": "Bearer aks_test_client0123456789"}

    async def go():
        client = HttpClient(max_connections=2, timeouts=Timeouts())
        try:
            return type(client._wire).__name__, await client.send(
                WireRequest(forward_url(base_url), headers, body, True)
            )
        finally:
            await client.aclose()

    wire, attempt = asyncio.run(go())
    assert wire == "_AiohttpWire"
    assert attempt.ok, attempt.error
    assert attempt.result.usage["completion_tokens"] == len(attempt.result.token_times_ns)
    assert attempt.send_ns < attempt.headers_ns <= attempt.result.token_times_ns[0]
