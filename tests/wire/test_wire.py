"""wire.py: forward URL, request body, SSE decoding on hostile input, chunk accumulation."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lavabench.wire.protocol import (
    ChatStreamAccumulator,
    SSEDecoder,
    chat_body,
    error_message_from_body,
    forward_url,
    parse_completion,
)


def test_forward_url_worked_example() -> None:
    # api-facts.md: the documented encoded form of the Fireworks chat URL.
    assert forward_url("https://api.lava.so") == (
        "https://api.lava.so/v1/forward?u="
        "https%3A%2F%2Fapi.fireworks.ai%2Finference%2Fv1%2Fchat%2Fcompletions"
    )
    assert forward_url("http://127.0.0.1:9/", "https://x.test/a?b=c&d") == (
        "http://127.0.0.1:9/v1/forward?u=https%3A%2F%2Fx.test%2Fa%3Fb%3Dc%26d"
    )


def test_chat_body_always_sends_max_tokens_and_include_usage() -> None:
    body = orjson.loads(
        chat_body(
            model_id="accounts/fireworks/models/gpt-oss-20b",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=64,
            stream=True,
            params={"temperature": 0.0, "seed": 3},
        )
    )
    assert body["max_tokens"] == 64
    assert body["stream_options"] == {"include_usage": True}
    assert body["perf_metrics_in_response"] is True
    assert body["seed"] == 3 and body["temperature"] == 0.0
    non_stream = orjson.loads(
        chat_body(model_id="m", messages=[], max_tokens=1, stream=False, params=None)
    )
    assert "stream_options" not in non_stream and non_stream["stream"] is False


def _events(chunks: list[bytes]) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    out = []
    for chunk in chunks:
        out += [(e.event, e.data.decode()) for e in decoder.feed(chunk)]
    out += [(e.event, e.data.decode()) for e in decoder.close()]
    return out


STREAM = (
    ": keep-alive\r\n"
    'data: {"a": "héllo ☃ 🎉"}\r\n\r\n'
    "event: ping\n"
    "data: line1\n"
    "data: line2\n\n"
    "data:nospace\r\r"
    "id: 7\nretry: 100\nunknown: x\ndata: [DONE]\n\n"
).encode()
EXPECTED = [
    ("message", '{"a": "héllo ☃ 🎉"}'),
    ("ping", "line1\nline2"),
    ("message", "nospace"),
    ("message", "[DONE]"),
]


def test_sse_whole_stream() -> None:
    assert _events([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_sse_split_at_every_byte(cut: int) -> None:
    # Includes cuts inside multi-byte UTF-8 characters and between CR and LF.
    assert _events([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_sse_one_byte_at_a_time() -> None:
    assert _events([bytes([b]) for b in STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_sse_arbitrary_splits(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert _events(pieces) == EXPECTED


def test_sse_unicode_line_separator_inside_json_is_not_a_line_break() -> None:
    payload = json.dumps({"t": "a\u2028b\u0085c"}, ensure_ascii=False)
    assert _events([f"data: {payload}\n\n".encode()]) == [("message", payload)]


def test_sse_partial_event_at_eof_is_dropped_and_flagged() -> None:
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: one\n\ndata: two")] == [b"one"]
    assert decoder.close() == []
    assert decoder.saw_partial_event


def test_sse_fast_path_and_slow_path_agree_on_pending_fields() -> None:
    # an `event:` line before a one-line data event must not be lost by the fast path
    assert _events([b"event: x\n", b"data: 1\n\ndata: 2\n\n"]) == [("x", "1"), ("message", "2")]
    assert _events([b"data: 1\n", b"\ndata: 2\n", b"\n"]) == [("message", "1"), ("message", "2")]


def test_sse_comment_only_and_empty_data_events() -> None:
    assert _events([b":\n\n: ping\n\ndata\n\n"]) == [("message", "")]


def _chunk(delta: dict | None = None, **extra: object) -> str:
    obj: dict = {"id": "cmpl-1", "object": "chat.completion.chunk"}
    obj["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
    obj.update(extra)
    return json.dumps(obj)


def test_accumulator_usage_only_chunk_with_empty_or_missing_choices() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data(_chunk({"role": "assistant"}), 1)
    acc.on_data(_chunk({"content": "Hi"}), 10)
    acc.on_data(_chunk({"content": " there"}), 20)
    finish = {"id": "cmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    acc.on_data(json.dumps(finish), 30)
    acc.on_data(_chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 2}), 31)
    acc.on_data(json.dumps({"usage": {"prompt_tokens": 5, "completion_tokens": 2}}), 32)
    acc.on_data("[DONE]", 33)
    r = acc.finish()
    assert r.done and r.answer_text == "Hi there" and r.finish_reason == "stop"
    assert r.usage == {"prompt_tokens": 5, "completion_tokens": 2}
    assert r.token_times_ns == [10, 20] and r.first_answer_ns == 10
    assert r.content_chunks == 2 and r.response_id == "cmpl-1"


def test_accumulator_usage_on_finish_chunk_and_repeated_is_not_summed() -> None:
    acc = ChatStreamAccumulator()
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    acc.on_data(_chunk({"content": "x"}), 1)
    acc.on_data(
        json.dumps({"choices": [{"delta": {}, "finish_reason": "length"}], "usage": usage}), 2
    )
    acc.on_data(_chunk(None, usage=usage), 3)
    assert acc.finish().usage == usage


def test_accumulator_mid_stream_error_object() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data(_chunk({"content": "x"}), 1)
    acc.on_data(json.dumps({"error": {"message": "overloaded", "type": "server_error"}}), 2)
    assert acc.result.error is not None and "overloaded" in acc.result.error
    assert not acc.result.done


def test_accumulator_malformed_json() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data('{"choices": [', 1)
    assert acc.result.error is not None and "malformed" in acc.result.error


def test_accumulator_reasoning_field_then_answer() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data(_chunk({"reasoning_content": "hmm"}), 5)
    acc.on_data(_chunk({"reasoning_content": " ok"}), 6)
    acc.on_data(_chunk({"content": "42"}), 9)
    r = acc.finish()
    assert (r.first_reasoning_ns, r.first_answer_ns) == (5, 9)
    assert (r.reasoning_chunks, r.content_chunks) == (2, 1)
    assert r.answer_text == "42" and r.token_times_ns == [5, 6, 9]


def test_accumulator_think_tags_split_across_chunks() -> None:
    acc = ChatStreamAccumulator()
    for t, text in enumerate(
        ["<th", "ink>", "let me", " see", "</thi", "nk>", "\n\n", "The", " answer"]
    ):
        acc.on_data(_chunk({"content": text}), t)
    r = acc.finish()
    assert r.first_reasoning_ns == 0
    assert r.first_answer_ns == 7
    assert r.answer_text == "The answer"
    assert r.reasoning_chunks == 7 and r.content_chunks == 2


@pytest.mark.parametrize("cut", range(1, len("</think>")))
def test_accumulator_lone_close_split_anywhere_after_plain_chunks(cut: int) -> None:
    # chunks without "<" keep no tail (the fast path); the tag split at every position, with
    # a "<" elsewhere in the text, must still turn what came before into reasoning
    texts = ["Let", " me a<b", "dd", "." + "</think>"[:cut], "</think>"[cut:] + "\n\n", "4", "2"]
    acc = ChatStreamAccumulator()
    for t, text in enumerate(texts):
        acc.on_data(_chunk({"content": text}), t)
    r = acc.finish()
    assert r.answer_text == "42"
    assert (r.reasoning_chunks, r.content_chunks) == (5, 2)
    assert (r.first_reasoning_ns, r.first_answer_ns) == (0, 5)
    assert r.token_times_ns == list(range(7))


def test_accumulator_a_lt_sign_alone_is_not_a_tag() -> None:
    acc = ChatStreamAccumulator()
    for t, text in enumerate(["a", " < b", "/think", ">", " c"]):  # "</think>" never adjacent
        acc.on_data(_chunk({"content": text}), t)
    r = acc.finish()
    assert r.answer_text == "a < b/think> c" and r.reasoning_chunks == 0


def test_accumulator_content_that_only_looks_like_a_tag_start() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data(_chunk({"content": "<"}), 1)
    acc.on_data(_chunk({"content": "3 is less"}), 2)
    r = acc.finish()
    assert r.answer_text == "<3 is less"
    assert r.first_answer_ns == 1 and r.content_chunks == 2 and r.reasoning_chunks == 0


def test_accumulator_ignores_data_after_done() -> None:
    acc = ChatStreamAccumulator()
    acc.on_data("[DONE]", 1)
    acc.on_data(_chunk({"content": "late"}), 2)
    assert acc.finish().answer_text == ""


def test_parse_completion_with_think_tags() -> None:
    body = json.dumps(
        {
            "id": "c1",
            "choices": [
                {"message": {"content": "<think>x</think>\nAnswer 4"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        }
    ).encode()
    result, problem = parse_completion(body)
    assert problem is None and result.answer_text == "Answer 4" and result.reasoning_chunks == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": {"message": "bad key", "code": "unauthorized", "status": 401}}', "bad key"),
        (b'{"error": "Too Many Requests", "message": "slow down"}', "Too Many Requests: slow down"),
        (b'{"detail": [{"msg": "field required"}]}', "field required"),
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b"", "(empty body)"),
    ],
)
def test_error_message_from_body_shapes(body: bytes, expected: str) -> None:
    assert expected in error_message_from_body(body)
