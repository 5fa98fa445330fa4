"""Bytes on the wire: HTTP/1.1 framing, Fireworks' chunk and body shapes, error envelopes.

Written independently of lavabench's client on purpose (a parsing bug cannot hide on both
sides). Speed matters here: every fragment that does not change per request is encoded once,
and a streamed event is `prefix + tail`, where the prefix (id, created, model) is built once
per stream and the tail of each token is cached per token text.
"""

from __future__ import annotations

import orjson

from lavabench.sim.completion import Completion
from lavabench.sim.tools import delta_json, message_calls

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    402: b"Payment Required",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, text) for code, text in _REASONS.items()}
JSON_TYPE = b"application/json"
TEXT_TYPE = b"text/plain; charset=utf-8"
CLOSE = b"connection: close\r\n"
LAST_CHUNK = b"0\r\n\r\n"
DONE_EVENT = b"data: [DONE]\n\n"

_STREAM_HEADERS = (
    STATUS_LINES[200]
    + b"content-type: text/event-stream\r\ncache-control: no-cache\r\n"
    + b"transfer-encoding: chunked\r\nfireworks-server-time-to-first-token: "
)
_EVENT_HEAD = b'data: {"id":"'
_EVENT_MID = b'","object":"chat.completion.chunk","created":'
_EVENT_CHOICE = b',"choices":[{"index":0,"delta":{'
_TOKEN_END = b'},"finish_reason":null}],"usage":null}\n\n'
_ROLE_TAIL = b'"role":"assistant"' + _TOKEN_END
_CONTENT_KEY = b'"content":'
_REASONING_KEY = b'"reasoning_content":'
_TAIL_CACHE_LIMIT = 200_000

_content_tails: dict[str, bytes] = {}
_reasoning_tails: dict[str, bytes] = {}
_model_json: dict[str, bytes] = {}


def http_chunk(payload: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def full_response(
    status: int, content_type: bytes, body: bytes, extra: bytes, keep_alive: bool
) -> bytes:
    """A complete response with Content-Length; `extra` is pre-formatted header lines."""
    return b"%bcontent-type: %b\r\ncontent-length: %d\r\n%b%b\r\n%b" % (
        STATUS_LINES[status],
        content_type,
        len(body),
        extra,
        b"" if keep_alive else CLOSE,
        body,
    )


def lava_error(status: int, code: str, message: str) -> bytes:
    """Lava's documented envelope {"error": {"message", "code", "status"}}."""
    return orjson.dumps({"error": {"message": message, "code": code, "status": status}})


def fireworks_error(message: str, request_id: str, kind: str = "invalid_request_error") -> bytes:
    """Fireworks' envelope {"error": {"object", "type", "code", "message"}, "request_id"}."""
    error = {"object": "error", "type": kind, "code": kind, "message": message}
    return orjson.dumps({"error": error, "request_id": request_id})


def _model_bytes(wire_id: str) -> bytes:
    encoded = _model_json.get(wire_id)
    if encoded is None:
        encoded = _model_json[wire_id] = orjson.dumps(wire_id)
    return encoded


def _tail(token: str, cache: dict[str, bytes], key: bytes) -> bytes:
    tail = cache.get(token)
    if tail is None:
        if len(cache) >= _TAIL_CACHE_LIMIT:
            cache.clear()
        tail = cache[token] = key + orjson.dumps(token) + _TOKEN_END
    return tail


def usage_json(c: Completion) -> bytes:
    """The `usage` object; `prompt_tokens_details` is null when cached tokens are not reported."""
    details = None if c.cached_tokens is None else {"cached_tokens": c.cached_tokens}
    n = c.completion_tokens
    return orjson.dumps(
        {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": n,
            "total_tokens": c.prompt_tokens + n,
            "prompt_tokens_details": details,
        }
    )


def perf_metrics(c: Completion) -> dict[str, float | int]:
    """Fireworks' `perf_metrics` object: the headers' names without `fireworks-`."""
    return {
        "server-time-to-first-token": c.ttft_s,
        "server-processing-time": c.processing_s,
        "prompt-tokens": c.prompt_tokens,
        "cached-prompt-tokens": c.cached_tokens or 0,
    }


def stream_headers(c: Completion, extra: bytes, keep_alive: bool) -> bytes:
    """Status line and headers of a streamed response (they precede the first token)."""
    return (
        b"%b%r\r\nfireworks-prompt-tokens: %d\r\nfireworks-cached-prompt-tokens: %d\r\n%b%b\r\n"
        % (
            _STREAM_HEADERS,
            c.ttft_s,
            c.prompt_tokens,
            c.cached_tokens or 0,
            extra,
            b"" if keep_alive else CLOSE,
        )
    )


def stream_events(c: Completion) -> tuple[bytes, list[bytes], bytes]:
    """(role event, one event per chunk, closing events) of a streamed completion.

    A chunk is one token unless the model packs several (`Completion.chunk_sizes`).

    The closing events are the finish chunk (usage on it for `finish_chunk` models,
    perf_metrics when asked), a `choices: []` usage chunk when `include_usage` was set, and
    `[DONE]`.
    """
    cid = c.completion_id.encode()
    created = b"%d" % c.created
    ident = _EVENT_HEAD + cid + _EVENT_MID + created + b',"model":' + _model_bytes(c.model.wire_id)
    prefix = ident + _EVENT_CHOICE
    tokens = c.tokens
    split = c.reasoning_count if c.reasoning_in_field else 0
    ctails, rtails = _content_tails, _reasoning_tails
    if c.chunk_sizes:
        events, start = [], 0
        for size in c.chunk_sizes:
            text = "".join(tokens[start : start + size])
            key = _REASONING_KEY if start < split else _CONTENT_KEY
            events.append(prefix + key + orjson.dumps(text) + _TOKEN_END)
            start += size
    else:
        text_end = len(tokens) - len(c.tool_pieces)
        events = [prefix + _tail(t, rtails, _REASONING_KEY) for t in tokens[:split]]
        events += [prefix + _tail(t, ctails, _CONTENT_KEY) for t in tokens[split:text_end]]
        events += [prefix + delta_json(p) + _TOKEN_END for p in c.tool_pieces]
    usage = usage_json(c)
    on_finish = usage if c.model.profile.usage_style == "finish_chunk" else b"null"
    finish = b'%b},"finish_reason":"%b"}],"usage":%b' % (
        prefix,
        c.finish_reason.encode(),
        on_finish,
    )
    if c.perf_metrics:
        finish += b',"perf_metrics":' + orjson.dumps(perf_metrics(c))
    closing = finish + b"}\n\n"
    if c.include_usage and c.model.profile.usage_style != "none":
        closing += ident + b',"choices":[],"usage":' + usage + b"}\n\n"
    return prefix + _ROLE_TAIL, events, closing + DONE_EVENT


def completion_body(c: Completion) -> bytes:
    """The non-streamed `chat.completion` JSON body."""
    split = c.reasoning_count if c.reasoning_in_field else 0
    text_end = len(c.tokens) - len(c.tool_pieces)
    content = "".join(c.tokens[split:text_end])
    message: dict[str, object] = {"role": "assistant", "content": content}
    if split:
        message["reasoning_content"] = "".join(c.tokens[:split])
    if c.tool_pieces:
        message["content"] = content or None
        message["tool_calls"] = message_calls(c.tool_pieces)
    body: dict[str, object] = {
        "id": c.completion_id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model.wire_id,
        "choices": [{"index": 0, "message": message, "finish_reason": c.finish_reason}],
    }
    if c.model.profile.usage_style != "none":
        body["usage"] = orjson.Fragment(usage_json(c))
    if c.perf_metrics:
        body["perf_metrics"] = perf_metrics(c)
    return orjson.dumps(body)


def completion_headers(c: Completion) -> bytes:
    """The `fireworks-*` timing headers that non-streamed responses always carry."""
    return (
        b"fireworks-server-time-to-first-token: %r\r\nfireworks-server-processing-time: %r\r\n"
        b"fireworks-prompt-tokens: %d\r\nfireworks-cached-prompt-tokens: %d\r\n"
        % (c.ttft_s, c.processing_s, c.prompt_tokens, c.cached_tokens or 0)
    )
