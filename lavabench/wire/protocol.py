"""Pure wire protocol: forward URL, request body, SSE decoding and chat-chunk accumulation.

Nothing here does I/O or reads a clock; the client feeds bytes and timestamps in. The SSE
decoder works on bytes and splits lines before decoding UTF-8 (WHATWG event-stream rules),
because a read can end inside a multi-byte character and because `str.splitlines()` would
also split on U+2028 inside JSON strings. httpx-sse is not used for that reason: it builds
on httpx's text line decoder, and it cannot tell us when each chunk's bytes arrived.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson

FIREWORKS_CHAT_URL = "https://api.fireworks.ai/inference/v1/chat/completions"


def forward_url(gateway_base_url: str, target_url: str = FIREWORKS_CHAT_URL) -> str:
    """`{gateway}/v1/forward?u=<target>` with `u` fully percent-encoded (`:` and `/` too)."""
    return f"{gateway_base_url.rstrip('/')}/v1/forward?u={quote(target_url, safe='')}"


def chat_completions_url(openai_base_url: str) -> str:
    """An OpenAI-compatible base URL (e.g. `.../inference/v1`) plus `/chat/completions`."""
    return f"{openai_base_url.rstrip('/')}/chat/completions"


def chat_body(
    *,
    model_id: str,
    messages: Sequence[Mapping[str, str]],
    max_tokens: int,
    stream: bool,
    params: Mapping[str, Any] | None = None,
    tools: Any = None,
    tool_choice: Any = None,
    response_format: Any = None,
) -> bytes:
    """The provider's JSON body. `max_tokens` is always explicit (Fireworks defaults to 2048).

    Streams always ask for `include_usage` (newer Kimi models send usage only then) and for
    `perf_metrics` (server timings in the body, which pass through Lava whatever it does with
    headers). `tools` (OpenAI `{"type": "function", "function": {...}}` objects),
    `tool_choice` and `response_format` are sent only when given: Fireworks rejects unknown or
    malformed fields with 400, so nothing is sent by default. Each may be an
    `orjson.Fragment` (JSON already encoded once per dataset item).
    """
    body: dict[str, Any] = {
        "model": model_id,
        "messages": list(messages),
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if params:
        body.update(params)
    for name, value in (
        ("tools", tools),
        ("tool_choice", tool_choice),
        ("response_format", response_format),
    ):
        if value is not None:
            body[name] = value
    if stream:
        body["stream_options"] = {"include_usage": True}
    body["perf_metrics_in_response"] = True
    return orjson.dumps(body)


# --- errors ---------------------------------------------------------------------------------


def error_message_from_body(body: bytes, limit: int = 500) -> str:
    """Best-effort message from an error body: `{"error": {...}}`, `{"error": "text"}`,
    FastAPI's `{"detail": [...]}`, or plain text."""
    text = body[:4096].decode("utf-8", errors="replace").strip()
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text[:limit] or "(empty body)"
    return _message_from_obj(obj, text)[:limit]


def _message_from_obj(obj: Any, fallback: str) -> str:
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("type") or err.get("code")
            if msg:
                extra = obj.get("message")
                return f"{msg}" + (f": {extra}" if isinstance(extra, str) and extra else "")
        if isinstance(err, str) and err:
            extra = obj.get("message")
            return err + (f": {extra}" if isinstance(extra, str) and extra else "")
        if "detail" in obj:
            return str(obj["detail"])
        if isinstance(obj.get("message"), str):
            return obj["message"]
    return fallback or "(empty body)"


# --- SSE ------------------------------------------------------------------------------------


class SSEEvent(NamedTuple):
    """`data` stays bytes (UTF-8): orjson parses bytes directly, a decode would be wasted."""

    event: str
    data: bytes


# SSEEvent("message", data) without the namedtuple's Python-level __new__ (~0.7 us an event,
# 34 events a response in bench_cli.py): the same tuple subclass, built in C.
_message_event = functools.partial(tuple.__new__, SSEEvent)
_NEXT_DATA_EVENT = b"\n\ndata: "
_DONE_EVENT = b"\n\ndata: [DONE]"


class SSEDecoder:
    """Incremental SSE decoder over bytes: `feed()` returns the events completed so far."""

    __slots__ = ("_buf", "_data", "_event", "saw_partial_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event = b""
        self.saw_partial_event = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[SSEEvent] = []
        start = 0
        if b"\r" not in buf:  # the common case: LF-only framing
            find = buf.find
            while (end := find(b"\n", start)) >= 0:
                # Fast path: a whole one-line `data: ...` event, nothing pending.
                if (
                    not self._data
                    and not self._event
                    and buf.startswith(b"data: ", start)
                    and buf.startswith(b"\n", end + 1)
                ):
                    events.append(_message_event(("message", buf[start + 6 : end])))
                    start = end + 2
                    continue
                self._line(buf[start:end], events)
                start = end + 1
        else:
            size = len(buf)
            while start < size:
                lf = buf.find(b"\n", start)
                cr = buf.find(b"\r", start, lf if lf >= 0 else size)
                if cr >= 0:
                    if cr + 1 == size:
                        break  # a lone CR at the end may be half of CRLF: wait for more
                    self._line(buf[start:cr], events)
                    start = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
                elif lf >= 0:
                    self._line(buf[start:lf], events)
                    start = lf + 1
                else:
                    break
        self._buf = buf[start:]
        return events

    def feed_objects(self, chunk: bytes) -> tuple[list[dict[str, Any]], bool] | None:
        """The common chunk in one parse: nothing pending and only whole one-line
        `data: {...}` events, perhaps then `data: [DONE]`: (their JSON objects in order,
        whether [DONE] ended it). Anything else (other fields, CR framing, a partial or
        empty event, a payload that is not an object, or an `error` object): None, with
        nothing consumed, for `feed`. Events are one line each, so joining them with ","
        inside "[...]" is one JSON array exactly when every payload is valid JSON; per
        event this saves the line scan, an SSEEvent and an orjson call (34 events a
        response in bench_cli.py, whose zero-delay server lets them pile up in one read).
        """
        if (
            self._buf
            or self._data
            or self._event
            or not chunk.startswith(b"data: ")
            or not chunk.endswith(b"\n\n")
            or b"\r" in chunk
        ):
            return None
        body, done = chunk[6:-2], False
        if body.endswith(b"[DONE]"):
            if body == b"[DONE]":
                return [], True
            if not body.endswith(_DONE_EVENT):
                return None
            body, done = body[: -len(_DONE_EVENT)], True
        joined = body.replace(_NEXT_DATA_EVENT, b",")
        if b"\n" in joined:
            return None
        try:
            objects = orjson.loads(b"[" + joined + b"]")
        except orjson.JSONDecodeError:
            return None
        if len(objects) != body.count(_NEXT_DATA_EVENT) + 1:
            return None  # an empty payload ("data: " alone) is an event the array drops
        for obj in objects:
            if type(obj) is not dict or "error" in obj:
                return None
        return objects, done

    def close(self) -> list[SSEEvent]:
        """End of stream: a final CR-terminated line still counts; a partial event is dropped."""
        events: list[SSEEvent] = []
        if self._buf.endswith(b"\r"):
            self._line(self._buf[:-1], events)
            self._buf = b""
        self.saw_partial_event = bool(self._buf) or bool(self._data)
        self._buf, self._data, self._event = b"", [], b""
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data)
                event = self._event.decode("utf-8", errors="replace") or "message"
                events.append(SSEEvent(event, data))
            self._data = []
            self._event = b""
            return
        if line[0] == 0x3A:  # ":" comment / keep-alive
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        # `id`, `retry` and unknown fields do not affect chat completions: ignored by design.


# --- chat-completion stream accumulation ---------------------------------------------------


@dataclass
class StreamResult:
    """What one chat completion said, with the arrival time of each text-bearing chunk."""

    response_id: str | None = None
    answer_parts: list[str] = field(default_factory=list)
    token_times_ns: list[int] = field(default_factory=list)
    first_reasoning_ns: int | None = None
    first_answer_ns: int | None = None
    content_chunks: int = 0
    reasoning_chunks: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    perf_metrics: dict[str, Any] | None = None
    done: bool = False
    done_ns: int | None = None  # when `[DONE]` arrived: the end of the answer (e2e_s)
    error: str | None = None
    # tool calls by stream index: {"id", "name", "arguments"} (arguments: the raw JSON text)
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)

    @property
    def answer_text(self) -> str:
        return "".join(self.answer_parts)

    def tool_calls_json(self) -> str | None:
        """The calls in index order as one JSON list, arguments kept verbatim; None if none."""
        if not self.tool_calls:
            return None
        calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return orjson.dumps(calls).decode()


_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def _preview(data: bytes | str, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return repr(text[:limit])


class ChatStreamAccumulator:
    """Applies `chat.completion.chunk` objects in order; tells reasoning from answer text.

    Reasoning arrives either as `delta.reasoning_content` or inside a leading
    `<think>...</think>` block in `content` (per model on Fireworks); both are handled. A
    model whose chat template opens `<think>` in the prompt streams only the closing tag:
    when a `</think>` appears in content that had no opening tag, everything before it was
    reasoning, and the first answer token is the first text after it.

    One chunk is one arrival: a chunk carrying reasoning and answer text (a transition
    chunk) counts in both chunk counts but adds one token time, not a zero-length gap.
    """

    def __init__(self) -> None:
        self.result = StreamResult()
        self._think_state = "undecided"  # undecided | inside | after | none
        self._head = ""
        self._held_ns: list[int] = []
        self._stamped = False  # the current chunk's arrival is already in token_times_ns
        self._close_tail = ""  # state none: the end of the text so far, for a split </think>

    def on_data(self, data: bytes | str, t_ns: int) -> None:
        """Apply one SSE `data:` payload (UTF-8 bytes or text) that arrived at `t_ns`."""
        result = self.result
        if result.done:
            return  # data after [DONE] is ignored, as the reference SDKs do
        first = data[:1]
        if first != b"{" and first != "{" and data.strip() in (b"[DONE]", "[DONE]"):
            result.done = True
            result.done_ns = t_ns
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            result.error = f"malformed JSON in SSE data: {_preview(data)}"
            return
        if not isinstance(obj, dict):
            result.error = f"SSE data is not a JSON object: {_preview(data)}"
            return
        if obj.get("error"):
            result.error = "error in stream: " + _message_from_obj(obj, _preview(data, 500))
            return
        self.on_object(obj, t_ns)

    def on_object(self, obj: dict[str, Any], t_ns: int) -> None:
        """Apply one chunk object already parsed (`SSEDecoder.feed_objects`: never an
        `error` object, which `on_data` reports with the raw payload)."""
        result = self.result
        if result.done:
            return
        if result.response_id is None and isinstance(obj.get("id"), str):
            result.response_id = obj["id"]
        if obj.get("usage"):
            result.usage = obj["usage"]  # last non-null usage wins; never summed
        if obj.get("perf_metrics"):
            result.perf_metrics = obj["perf_metrics"]
        choices = obj.get("choices") or ()
        self._stamped = False
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                self._reasoning_chunk(t_ns)
            content = delta.get("content")
            if content:
                if self._think_state == "none":  # most chunks: _answer_chunk, inlined
                    result.content_chunks += 1
                    result.answer_parts.append(content)
                    if result.first_answer_ns is None:
                        result.first_answer_ns = t_ns
                    if not self._stamped:  # _stamp, inlined (reasoning may have stamped)
                        self._stamped = True
                        result.token_times_ns.append(t_ns)
                    if self._close_tail or "<" in content:
                        self._look_for_lone_close(content, t_ns)
                else:
                    self._content_chunk(content, t_ns)
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                self._tool_call_chunk(tool_calls, t_ns)
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]

    def _stamp(self, t_ns: int) -> None:
        """The current chunk's arrival, once however many kinds of text it carries."""
        if not self._stamped:
            self._stamped = True
            self.result.token_times_ns.append(t_ns)

    def _reasoning_chunk(self, t_ns: int, *, held: bool = False) -> None:
        r = self.result
        r.reasoning_chunks += 1
        if r.first_reasoning_ns is None:
            r.first_reasoning_ns = t_ns
        if held:  # an earlier chunk whose kind was decided only now
            r.token_times_ns.append(t_ns)
        else:
            self._stamp(t_ns)

    def _tool_call_chunk(self, deltas: Any, t_ns: int) -> None:
        """Merge `delta.tool_calls` fragments by `index` (OpenAI's rule: id and type once,
        name and arguments concatenated). A tool-call delta is an answer chunk for timing:
        the first one is the first output token, as a first `content` token would be."""
        r = self.result
        if not isinstance(deltas, list):
            r.error = f"delta.tool_calls is not a list: {_preview(repr(deltas))}"
            return
        merge_tool_calls(r.tool_calls, deltas)
        r.content_chunks += 1
        if r.first_answer_ns is None:
            r.first_answer_ns = t_ns
        self._stamp(t_ns)

    def _answer_chunk(self, text: str, t_ns: int) -> None:
        r = self.result
        r.content_chunks += 1
        r.answer_parts.append(text)
        if r.first_answer_ns is None:
            r.first_answer_ns = t_ns
        self._stamp(t_ns)

    def _content_chunk(self, text: str, t_ns: int) -> None:
        if self._think_state == "none":
            self._answer_chunk(text, t_ns)
            if self._close_tail or "<" in text:
                self._look_for_lone_close(text, t_ns)
            return
        if self._think_state == "after":
            if self.result.first_answer_ns is None and not text.strip():
                self._reasoning_chunk(t_ns)  # blank lines between </think> and the answer
            else:
                self._answer_chunk(text if self.result.answer_parts else text.lstrip(), t_ns)
            return
        self._head += text
        if self._think_state == "undecided":
            stripped = self._head.lstrip()
            if stripped.startswith(_THINK_OPEN):
                self._think_state = "inside"
                for held_ns in self._held_ns:
                    self._reasoning_chunk(held_ns, held=True)
                self._held_ns.clear()
            elif _THINK_OPEN.startswith(stripped):
                self._held_ns.append(t_ns)  # maybe the start of a <think> tag: decide later
                return
            else:
                self._release_held_as_answer(t_ns)
                return
        close_at = self._head.find(_THINK_CLOSE)
        if close_at < 0:
            self._reasoning_chunk(t_ns)
            return
        self._think_state = "after"
        rest = self._head[close_at + len(_THINK_CLOSE) :].lstrip()
        self._head = ""
        if rest:
            self._answer_chunk(rest, t_ns)
        else:
            self._reasoning_chunk(t_ns)

    def _release_held_as_answer(self, t_ns: int | None) -> None:
        """The held chunks (and the current one, `t_ns`) were answer text after all."""
        self._think_state = "none"
        held, self._held_ns = self._held_ns, []
        r = self.result
        head, self._head = self._head, ""
        r.answer_parts.append(head)
        r.content_chunks += len(held) + (t_ns is not None)
        r.token_times_ns.extend(held)
        if t_ns is not None:
            self._stamp(t_ns)
        first = held[0] if held else t_ns
        if r.first_answer_ns is None and first is not None:
            r.first_answer_ns = first
        last = t_ns if t_ns is not None else (held[-1] if held else None)
        self._look_for_lone_close(head, last)

    def _look_for_lone_close(self, text: str, t_ns: int | None) -> None:
        """State none: a `</think>` without an opening tag turns what came before into
        reasoning (the template opened the block in the prompt); see the class docstring.

        Callers skip it when neither the kept tail nor `text` has a "<": no tag can then end
        in this chunk, and a tail without "<" cannot start one (the same as an empty tail),
        so the tail is only ever kept when it can matter."""
        window = self._close_tail + text
        at = window.find(_THINK_CLOSE)
        if at < 0:
            tail = window[-(len(_THINK_CLOSE) - 1) :]
            self._close_tail = tail if "<" in tail else ""
            return
        r = self.result
        self._think_state, self._close_tail = "after", ""
        if r.first_answer_ns is not None and (
            r.first_reasoning_ns is None or r.first_answer_ns < r.first_reasoning_ns
        ):
            r.first_reasoning_ns = r.first_answer_ns
        r.reasoning_chunks += r.content_chunks
        r.content_chunks, r.first_answer_ns = 0, None
        r.answer_parts.clear()
        rest = window[at + len(_THINK_CLOSE) :].lstrip()
        if rest and t_ns is not None:  # this chunk also starts the answer
            r.reasoning_chunks -= 1
            r.content_chunks, r.first_answer_ns = 1, t_ns
            r.answer_parts.append(rest)

    def finish(self) -> StreamResult:
        """End of input: a still-undecided head (e.g. just `<thi`) counts as answer text."""
        if self._think_state == "undecided" and self._held_ns:
            self._release_held_as_answer(None)
        return self.result


def merge_tool_calls(calls: dict[int, dict[str, str]], deltas: Sequence[Any]) -> None:
    """Apply one chunk's `tool_calls` list to `calls` (by `index`; a missing index is the
    position in the list, as some servers send whole calls without one)."""
    for position, delta in enumerate(deltas):
        if not isinstance(delta, dict):
            continue
        index = delta.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool):
            index = position
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if isinstance(delta.get("id"), str) and not call["id"]:
            call["id"] = delta["id"]
        function = delta.get("function")
        if isinstance(function, dict):
            name, arguments = function.get("name"), function.get("arguments")
            if isinstance(name, str):
                call["name"] += name
            if isinstance(arguments, str):
                call["arguments"] += arguments
            elif isinstance(arguments, dict):  # a server that sends an object, not text
                call["arguments"] += orjson.dumps(arguments).decode()


def parse_completion(body: bytes) -> tuple[StreamResult, str | None]:
    """A non-streaming `chat.completion` body as a StreamResult (no per-token times)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return StreamResult(), f"malformed JSON body: {body[:200]!r}"
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list) or not obj["choices"]:
        return StreamResult(), "response has no choices"
    choice = obj["choices"][0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or ""
    if not reasoning and (content.lstrip().startswith(_THINK_OPEN) or _THINK_CLOSE in content):
        close_at = content.find(_THINK_CLOSE)  # a lone </think>: the template opened it
        if close_at >= 0:
            reasoning = content[: close_at + len(_THINK_CLOSE)]
            content = content[close_at + len(_THINK_CLOSE) :].lstrip()
    calls: dict[int, dict[str, str]] = {}
    if isinstance(message.get("tool_calls"), list):
        merge_tool_calls(calls, message["tool_calls"])
    result = StreamResult(
        tool_calls=calls,
        response_id=obj.get("id") if isinstance(obj.get("id"), str) else None,
        answer_parts=[content] if content else [],
        finish_reason=choice.get("finish_reason"),
        usage=obj.get("usage") or None,
        perf_metrics=obj.get("perf_metrics") or None,
        done=True,
        content_chunks=1 if content or calls else 0,
        reasoning_chunks=1 if reasoning else 0,
    )
    return result, None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
