"""One HTTP/1.1 keep-alive connection: httptools parses, the Handler decides, timers write.

An `asyncio.Protocol` rather than streams: no task per request and no awaits on the hot path,
which is what lets one core serve thousands of streams per second. Timed writes are one
`loop.call_at` handle per connection at a time, at absolute times computed from the request's
receipt, so delays never accumulate drift; when the timer fires, every part already due is
written in one go (the loop may have lagged). A client that disconnects cancels its timer.
Pipelined requests queue behind the response in progress.

Clock: receipt is stamped with `time.monotonic()`, the clock libuv's loop time is read from,
at full precision (uvloop's `loop.time()` is the same clock truncated to whole ms, which
would start every delay up to 1 ms early). Timers fire within about +/-1 ms of the planned
time on an idle loop, centred on it (libuv's timers tick in ms; see _TIMER_LEAD_S). The log
records when the first token actually left (`sent_ttft_s`) beside the plan: compare a
client's TTFT with that to isolate the client's own error.

A response's log line is written just before its last byte, so a client that has the whole
response can always find its line (a stream cut short by the client is never logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque

import httptools

from lavabench.sim import wire
from lavabench.sim.capacity import Slots
from lavabench.sim.eventlog import EventLog
from lavabench.sim.handler import Handler, Request, Response

MAX_BODY_BYTES = 16 * 1024 * 1024
_COALESCE_S = 0.0005  # parts due within this much of now go out in the same write
# libuv fires a timer on the first 1 ms tick at or after its due time, i.e. 0.5 ms late on
# average: aiming half a tick early centres the error on zero (within about +/-1 ms).
_TIMER_LEAD_S = 0.0005


class Connection(asyncio.Protocol):
    """Serves the requests of one client connection in order."""

    def __init__(
        self, handler: Handler, log: EventLog, registry: set[Connection], slots: Slots
    ) -> None:
        self._handler = handler
        self._slots = slots
        self._slot_model: str | None = None  # the model whose slot the active response holds
        self._log = log
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._close_after = False
        self._url = b""
        self._auth: bytes | None = None
        self._metadata: bytes | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._active: Response | None = None
        self._next = 0
        self._received_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._queue: deque[Request] = deque()

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol upgrades here: finish what was asked, then close.
            self._close_after = True
            if self._active is None and self._transport is not None:
                self._transport.close()
                self._closed = True
        except httptools.HttpParserError:
            self._fail(400, b"malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._active = None
        self._queue.clear()
        self._registry.discard(self)
        self._release_slot()

    def abort(self) -> None:
        """Drop the connection now (server shutdown)."""
        if self._transport is not None:
            self._transport.abort()

    # httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._auth = None
        self._metadata = None
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"authorization":
            self._auth = value
        elif lower == b"x-lava-metadata":
            self._metadata = value

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_BODY_BYTES:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._body_size > MAX_BODY_BYTES:
            self._fail(413, b"request body too large")
            return
        parser = self._parser
        try:
            url = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._fail(400, b"malformed request target")
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req = Request(
            parser.get_method(),
            url.path,
            url.query,
            self._auth,
            self._metadata,
            body,
            parser.should_keep_alive(),
            time.monotonic(),
        )
        if self._active is None and not self._queue:
            self._start(req)
        else:
            self._queue.append(req)

    # responding -------------------------------------------------------------------------

    def _start(self, req: Request) -> None:
        resp = self._handler.handle(req)
        transport = self._transport
        if self._closed or transport is None:
            return
        if resp.record is not None:  # on the machine's monotonic clock, as clients stamp
            resp.record["received_mono_s"] = req.received_at
        if resp.parts:
            if resp.head:
                transport.write(resp.head)
            self._active = resp
            self._received_at = req.received_at
            self._next = 0
            model = _slot_model(resp) if self._slots.enabled else None
            if model is not None and not self._slots.acquire(model, self._admit_queued):
                return  # waits in line; _admit_queued starts it
            self._slot_model = model
            self._timer = self._loop.call_at(resp.parts[0][0] - _TIMER_LEAD_S, self._tick)
            return
        record = resp.record
        if record is not None:
            if record["status"] == 200:
                record["sent_ttft_s"] = round(time.monotonic() - req.received_at, 6)
            self._log.write(record)
        if resp.head:
            transport.write(resp.head)
        self._after_last_write(resp)

    def _tick(self) -> None:
        self._timer = None
        resp = self._active
        transport = self._transport
        if resp is None or resp.parts is None or transport is None or self._closed:
            return
        parts = resp.parts
        first = self._next
        end = first + 1
        now = time.monotonic()
        horizon = now + _COALESCE_S
        while end < len(parts) and parts[end][0] <= horizon:
            end += 1
        record = resp.record
        if record is not None:
            if first == 0:
                record["sent_ttft_s"] = round(now - self._received_at, 6)
            if end == len(parts):
                self._log.write(record)
        if end == first + 1:
            transport.write(parts[first][1])
        else:
            transport.write(b"".join([p[1] for p in parts[first:end]]))
        if end < len(parts):
            self._next = end
            self._timer = self._loop.call_at(parts[end][0] - _TIMER_LEAD_S, self._tick)
            return
        self._active = None
        self._release_slot()
        self._after_last_write(resp)
        while self._queue and self._active is None and not self._closed:
            self._start(self._queue.popleft())

    def _admit_queued(self) -> bool:
        """A slot freed for the response waiting here: shift its schedule by the wait."""
        resp = self._active
        if resp is None or resp.parts is None or self._closed:
            return False  # the client went away while waiting: the slot goes to the next
        wait_s = time.monotonic() - self._received_at
        resp.parts = [(due + wait_s, data) for due, data in resp.parts]
        if resp.record is not None:
            resp.record["queue_wait_s"] = round(wait_s, 6)
        self._slot_model = _slot_model(resp)
        self._timer = self._loop.call_at(resp.parts[0][0] - _TIMER_LEAD_S, self._tick)
        return True

    def _release_slot(self) -> None:
        if self._slot_model is not None:
            model, self._slot_model = self._slot_model, None
            self._slots.release(model)

    def _after_last_write(self, resp: Response) -> None:
        if resp.abort_after and self._transport is not None:
            self._transport.abort()  # an injected fault: reset, no orderly close
            self._closed = True
            return
        if (not resp.keep_alive or self._close_after) and self._transport is not None:
            self._transport.close()
            self._closed = True

    def _fail(self, status: int, message: bytes) -> None:
        """A request we cannot parse: answer it (unless mid-response) and close."""
        transport = self._transport
        if transport is None or self._closed:
            return
        if self._active is None:
            transport.write(wire.full_response(status, wire.TEXT_TYPE, message, b"", False))
        transport.close()
        self._closed = True


def _slot_model(resp: Response) -> str | None:
    """The model whose capacity a timed response uses: planned completions only."""
    return resp.model
