"""How to send one attempt: one pooled connection set, raw timestamps, every failure classified.

Wire: aiohttp's ClientSession directly by default; any httpx transport when one is passed
(tests use httpx.MockTransport). On this machine httpx's default (httpcore) pool cost
2.7-5 ms of CPU per streamed request at concurrency 64-256 and its TTFT became a queueing
artefact; httpx over the aiohttp-backed transport ~0.4 ms; aiohttp read directly ~0.2 ms
(shared/docs/performance-notes.md; re-measured in `make bench`). Both wires share one
response handler (`_consume`), so status, headers, errors and stamps mean the same.

Timestamps are `time.perf_counter_ns()` taken as soon as a read returns bytes, before that
read is parsed, so parsing never shifts the arrival time of the tokens in it. No retries here: `runner/retry.py`
decides, the runner acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

import aiohttp
import httpx
import orjson

from lavabench import __version__
from lavabench.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    GatewayError,
    InsufficientBalance,
    ModelUnavailable,
    RateLimited,
    StreamBroken,
    Unavailable,
)
from lavabench.wire.protocol import (
    ChatStreamAccumulator,
    SSEDecoder,
    SSEEvent,
    StreamResult,
    error_message_from_body,
    parse_completion,
    parse_retry_after,
)

_MAX_ERROR_BODY = 64 * 1024


@dataclass
class Timeouts:
    """`runner.timeouts` in config (a Hydra structured-config schema, hence not frozen)."""

    connect_s: float = 10.0
    first_token_s: float = 120.0  # send -> first token (streams); a stuck queue fails here
    read_s: float = 120.0  # longest silence allowed between two reads
    total_s: float = 600.0  # whole attempt, send to [DONE]

    def __post_init__(self) -> None:
        if min(self.connect_s, self.first_token_s, self.read_s, self.total_s) <= 0:
            raise ConfigError("runner.timeouts: every timeout must be > 0 seconds")


@dataclass(frozen=True)
class WireRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    stream: bool


@dataclass
class Attempt:
    """One attempt's raw observations; `perf_counter_ns` stamps, absolute."""

    send_ns: int
    started_at: datetime
    end_ns: int = 0
    headers_ns: int | None = None
    http_status: int | None = None
    result: StreamResult | None = None
    error: GatewayError | None = None
    lava_request_id: str | None = None
    server_headers: dict[str, str] = field(default_factory=dict)
    # the aiohttp wire's silence check (`_DeadlineWatchdog`): when bytes last arrived, and
    # whether the watchdog ended the attempt for a silence longer than `read_s`
    last_read_ns: int = 0
    stalled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


_SERVER_TIMING_HEADERS = frozenset(
    {b"fireworks-server-time-to-first-token", b"fireworks-server-processing-time"}
)


def classify_response(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """Map a non-200 response to exactly one error kind (the retry policy reads only that)."""
    message = f"HTTP {status}: {error_message_from_body(body)}"
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 403 and "model" in message.lower():
        return ModelUnavailable(
            message + " -- this model is not available to this credential: it is paused, "
            "the other models continue",
            http_status=status,
        )
    if status in (401, 403):
        return AuthFailed(
            message + " -- check LAVA_SECRET_KEY / LAVA_FORWARD_TOKEN (or the direct key)",
            http_status=status,
        )
    if status == 402:
        return InsufficientBalance(
            message + " -- add funds to the Lava wallet (or the Fireworks account)",
            http_status=status,
        )
    if status == 429:
        return RateLimited(message, http_status=status, retry_after_s=retry_after)
    if status in (408, 409) or status >= 500:
        return Unavailable(message, http_status=status, retry_after_s=retry_after)
    return BadRequest(message, http_status=status)


_FRAME_KINDS = (  # an `event: error` frame's error type -> the HTTP status it stands for
    (("auth", "permission", "unauthorized", "invalid_api_key"), 401),
    (("insufficient", "balance", "billing", "payment", "quota"), 402),
    (("rate_limit", "too_many", "429"), 429),
    (("overload", "unavailable", "server_error", "internal", "timeout", "capacity"), 503),
    (("invalid_request", "bad_request", "not_found", "validation"), 400),
)


def classify_error_frame(data: bytes) -> GatewayError:
    """An SSE `event: error` frame after a 200 -> the error kind the equivalent HTTP error
    has, so it is retried (or stops the run) by the same rules: a status in the frame
    (`error.status`, a numeric `error.code`, top-level `status`) is classified as that
    status; else the error's `type`/`code` text; else the stream is broken."""
    message = "error event in stream: " + error_message_from_body(data)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        obj = None
    err = obj.get("error") if isinstance(obj, dict) else None
    fields = err if isinstance(err, dict) else obj if isinstance(obj, dict) else {}
    for candidate in (fields.get("status"), fields.get("code"), (obj or {}).get("status")):
        status = (
            candidate if isinstance(candidate, int) and not isinstance(candidate, bool) else None
        )
        if isinstance(candidate, str) and candidate.isdigit():
            status = int(candidate)
        if status is not None and 400 <= status <= 599:
            return _with_status(classify_response(status, data, {}), message)
    text = " ".join(str(fields.get(k) or "") for k in ("type", "code")).lower()
    for needles, status in _FRAME_KINDS:
        if any(n in text for n in needles):
            return _with_status(classify_response(status, data, {}), message)
    return StreamBroken(message, http_status=200)


def _with_status(error: GatewayError, message: str) -> GatewayError:
    """The frame's kind, with the response's real HTTP status (200) and the frame's text."""
    error.message, error.args, error.http_status = message, (message,), 200
    return error


def classify_exception(exc: BaseException, *, after_headers: bool) -> GatewayError:
    """Transport failures: before a 200's headers the server was unreachable or slow
    (retryable); after them the stream broke (also retryable, but a partial answer)."""
    cause = exc.__cause__ or exc
    detail = f"{type(cause).__name__}: {cause}".strip().rstrip(":")
    if isinstance(exc, TimeoutError | httpx.TimeoutException | aiohttp.ServerTimeoutError):
        what = "stream stalled" if after_headers else "timed out before response headers"
        return (StreamBroken if after_headers else Unavailable)(f"{what} ({detail})")
    if after_headers:
        return StreamBroken(f"connection lost mid-stream ({detail})")
    return Unavailable(f"connection failed ({detail})")


class HttpClient:
    """Sends attempts over one pooled connection set; safe to share across tasks.

    Two wires behind one interface: by default aiohttp directly (the fast path), or any
    httpx transport when one is given (tests' MockTransport, a custom transport)."""

    def __init__(
        self,
        *,
        max_connections: int,
        timeouts: Timeouts,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeouts = timeouts
        self._wire: _Wire = (
            _AiohttpWire(max_connections, timeouts)
            if transport is None
            else _HttpxWire(transport, max_connections, timeouts)
        )

    async def aclose(self) -> None:
        await self._wire.aclose()

    async def send(self, request: WireRequest) -> Attempt:
        send_ns = time.perf_counter_ns()
        attempt = Attempt(send_ns=send_ns, started_at=datetime.now(UTC), last_read_ns=send_ns)
        t = self._timeouts
        now = asyncio.get_running_loop().time()
        total_at = now + t.total_s
        # One deadline: the first-token limit until a token arrives, then the total limit.
        first_at = min(total_at, now + t.first_token_s) if request.stream else total_at
        watchdog = self._wire.watchdog
        try:
            if watchdog is None:  # the wire enforces read_s; the deadlines are timers
                async with asyncio.timeout_at(first_at) as deadline:
                    await self._wire.exchange(
                        request, attempt, lambda: deadline.reschedule(total_at)
                    )
            else:  # the watchdog enforces all three: no timer armed per request
                async with asyncio.timeout_at(None) as deadline:
                    first_by_ns = send_ns + round((first_at - now) * 1e9)
                    watchdog.watch(attempt, deadline, first_by_ns if request.stream else None,
                                   send_ns + round(t.total_s * 1e9))  # fmt: skip
                    try:
                        await self._wire.exchange(request, attempt, _no_first_token_hook)
                    finally:
                        watchdog.unwatch(attempt)
        except TimeoutError:
            got_token = attempt.result is not None and bool(attempt.result.token_times_ns)
            if attempt.stalled:  # no bytes for read_s (what aiohttp's sock_read would say)
                what = (
                    "stream stalled"
                    if attempt.http_status == 200
                    else "timed out before response headers"
                )
                attempt.error = (StreamBroken if attempt.http_status == 200 else Unavailable)(
                    f"{what} (no data for {t.read_s:g} s)"
                )
            elif not got_token and request.stream and first_at < total_at:
                attempt.error = Unavailable(f"no first token within {t.first_token_s:g} s")
            elif attempt.http_status == 200:
                attempt.error = StreamBroken(f"response not complete within {t.total_s:g} s")
            else:
                attempt.error = Unavailable(f"no response within {t.total_s:g} s")
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            attempt.error = classify_exception(exc, after_headers=attempt.http_status == 200)
        attempt.end_ns = time.perf_counter_ns()
        return attempt


# --- the two wires -----------------------------------------------------------------------


class _Response(Protocol):
    """What `_consume` needs of a response, whichever library produced it."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive (httpx, aiohttp)

    @property
    def raw_headers(self) -> Iterable[tuple[bytes, bytes]]: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...


class _Wire(Protocol):
    watchdog: _DeadlineWatchdog | None  # None: the wire enforces `read_s` itself (httpx)

    async def exchange(
        self, request: WireRequest, attempt: Attempt, on_first_token: Callable[[], None]
    ) -> None: ...

    async def aclose(self) -> None: ...


class _AiohttpWire:
    """aiohttp's ClientSession directly: the default, and the path `make bench` measures.

    Measured (py-spy, c=256, zero-delay simulator): httpx's request/response objects,
    cookie handling and the httpx-aiohttp adapter took ~30% of the client's CPU per request
    on top of aiohttp itself, more than the whole budget left for SSE parsing, timing and
    Parquet at the issue's target rate. The connector is sized to the run's concurrency
    (aiohttp's default limit of 100 would queue requests at c=256 and show as TTFT);
    `Accept-Encoding: identity` so no gzip layer can hold tokens back (or need decoding).
    """

    def __init__(self, max_connections: int, timeouts: Timeouts) -> None:
        self._max_connections = max_connections
        # No sock_read: aiohttp enforces it by cancelling and re-arming a timer on every
        # read (two loop calls per SSE chunk, ~1.5% of the loop at c=256 in py-spy); the
        # watchdog checks every attempt's last read a few times per `read_s` instead.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect_s)
        self.watchdog: _DeadlineWatchdog | None = _DeadlineWatchdog(
            timeouts.read_s, timeouts.first_token_s, timeouts.total_s
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """Made on first use: aiohttp binds a session to the running event loop."""
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=5.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # proxy variables never reroute a measurement
            headers=_DEFAULT_HEADERS,
        )
        return self._session

    async def exchange(
        self, request: WireRequest, attempt: Attempt, on_first_token: Callable[[], None]
    ) -> None:
        session = self._session or self._open()
        async with session.post(
            request.url, data=request.body, headers=request.headers, allow_redirects=False
        ) as response:
            await _consume(_AiohttpResponse(response), request, attempt, on_first_token)

    async def aclose(self) -> None:
        if self.watchdog is not None:
            await self.watchdog.stop()
        if self._session is not None:
            await self._session.close()


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = cast(Mapping[str, str], response.headers)
        self.raw_headers = response.raw_headers

    def chunks(self) -> AsyncIterator[bytes]:
        return cast(AsyncIterator[bytes], self._response.content.iter_any())

    async def read(self) -> bytes:
        return await self._response.read()


class _HttpxWire:
    """Any httpx transport: how tests drive the client with httpx.MockTransport."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, max_connections: int, timeouts: Timeouts
    ) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.watchdog: _DeadlineWatchdog | None = None  # httpx's own read timeout applies
        self._urls: dict[str, httpx.URL] = {}
        self._client = httpx.AsyncClient(
            transport=transport,
            limits=limits,
            trust_env=False,
            headers=_DEFAULT_HEADERS,
            timeout=httpx.Timeout(
                connect=timeouts.connect_s, read=timeouts.read_s, write=timeouts.read_s, pool=None
            ),
        )

    def _url(self, url: str) -> httpx.URL:
        """Parse each distinct URL once; httpx would otherwise re-parse it per request."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def exchange(
        self, request: WireRequest, attempt: Attempt, on_first_token: Callable[[], None]
    ) -> None:
        async with self._client.stream(
            "POST", self._url(request.url), content=request.body, headers=request.headers
        ) as response:
            await _consume(_HttpxResponse(response), request, attempt, on_first_token)

    async def aclose(self) -> None:
        await self._client.aclose()


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers
        self.raw_headers = response.headers.raw

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()

    async def read(self) -> bytes:
        return await self._response.aread()


_DEFAULT_HEADERS = {"user-agent": f"lavabench/{__version__}", "accept-encoding": "identity"}


async def _consume(
    response: _Response, request: WireRequest, attempt: Attempt, on_first_token: Callable[[], None]
) -> None:
    """Status, the headers we keep, then the stream (or body) into `attempt`."""
    attempt.headers_ns = attempt.last_read_ns = time.perf_counter_ns()
    attempt.http_status = response.status
    for raw_name, raw_value in response.raw_headers:  # one pass, no per-name lookups
        name = raw_name.lower()
        if name == b"x-lava-request-id":
            attempt.lava_request_id = raw_value.decode("latin-1")
        elif name in _SERVER_TIMING_HEADERS:
            attempt.server_headers[name.decode()] = raw_value.decode("latin-1")
    if response.status != 200:
        body = await _read_capped(response.chunks(), attempt)
        attempt.error = classify_response(response.status, body, response.headers)
        return
    if request.stream:
        attempt.result = await _read_stream(response.chunks(), attempt, on_first_token)
        if attempt.error is not None:
            pass  # an `event: error` frame, classified already
        elif attempt.result.error:
            attempt.error = StreamBroken(attempt.result.error, http_status=200)
        elif not attempt.result.done:
            attempt.error = StreamBroken(
                "stream ended without [DONE]: truncated response", http_status=200
            )
    else:
        attempt.result, problem = parse_completion(await _read_all(response.chunks(), attempt))
        attempt.result.done_ns = time.perf_counter_ns()
        if problem:
            attempt.error = StreamBroken(problem, http_status=200)


async def _read_stream(
    chunks: AsyncIterator[bytes], attempt: Attempt, on_first_token: Callable[[], None]
) -> StreamResult:
    """Stamp each read the moment it returns, then decode it.

    Measured against decoding after the stream ends: equal with jittered arrivals, and
    better when many streams' tokens land in the same millisecond (the end-of-stream
    parsing bursts then delay the next requests' sends).
    """
    decoder = SSEDecoder()
    acc = ChatStreamAccumulator()
    result = attempt.result = acc.result  # a timeout mid-stream still sees what arrived
    perf_counter_ns = time.perf_counter_ns
    feed, feed_objects, on_data, on_object = (
        decoder.feed, decoder.feed_objects, acc.on_data, acc.on_object
    )  # fmt: skip
    waiting_for_first = True
    async for chunk in chunks:
        t_ns = attempt.last_read_ns = perf_counter_ns()
        parsed = feed_objects(chunk)  # the common chunk, parsed at once (else None)
        if parsed is not None:
            for obj in parsed[0]:
                on_object(obj, t_ns)
                if result.error:
                    break
            if parsed[1] and not result.error:
                on_data(b"[DONE]", t_ns)
        else:
            for event in feed(chunk):
                if event.event == "message":  # _apply_event's common case, without the call
                    on_data(event.data, t_ns)
                else:
                    _apply_event(event, acc, attempt, t_ns)
                if result.error:
                    break
        if waiting_for_first and result.token_times_ns:
            waiting_for_first = False
            on_first_token()
        if result.error:
            break  # the connection is discarded; reading on would only cost time
    # After [DONE] we still read to EOF (the chunked terminator) so the connection is reused.
    if not acc.result.done and not acc.result.error:
        for event in decoder.close():
            _apply_event(event, acc, attempt, perf_counter_ns())
    return acc.finish()


def _apply_event(event: SSEEvent, acc: ChatStreamAccumulator, attempt: Attempt, t_ns: int) -> None:
    """A data event feeds the accumulator; an `event: error` frame (ignored before, so the
    stream looked complete) is the attempt's error, classified like an HTTP error."""
    if event.event == "error":
        attempt.error = classify_error_frame(event.data)
        acc.result.error = attempt.error.message
    else:
        acc.on_data(event.data, t_ns)


async def _read_capped(chunks: AsyncIterator[bytes], attempt: Attempt) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        attempt.last_read_ns = time.perf_counter_ns()
        body += chunk
        if len(body) >= _MAX_ERROR_BODY:
            break
    return bytes(body)


async def _read_all(chunks: AsyncIterator[bytes], attempt: Attempt) -> bytes:
    """A whole (non-streamed) body, noting each read for the watchdog."""
    parts = []
    async for chunk in chunks:
        attempt.last_read_ns = time.perf_counter_ns()
        parts.append(chunk)
    return b"".join(parts)


def _no_first_token_hook() -> None:
    """The watchdog sees the first token in the attempt itself: nothing to re-arm."""


class _DeadlineWatchdog:
    """The aiohttp wire's deadlines: `read_s` (no bytes for that long), the first-token
    limit and `total_s`, for every attempt in flight, from one task.

    Why not timers: aiohttp's sock_read cancels and re-arms a timer on every read, and a
    per-request `asyncio.timeout` arms one at the send and re-arms it at the first token
    (~4 % of the loop thread at c=256 in py-spy, on top of aiohttp's own). The task wakes
    every quarter of the shortest limit (at most every 1 s) and looks at each attempt's
    stamps (`last_read_ns`, stamped as bytes arrive; its first token): a limit of L is
    noticed within L + L / 4 (and at most 1 s late). It ends the attempt through its own
    `asyncio.Timeout` (`stalled` tells `send` a silence from a deadline), so the
    classification is the one of any other timeout."""

    def __init__(self, read_s: float, first_token_s: float, total_s: float) -> None:
        self._read_ns = round(read_s * 1e9)
        self._every_s = min(1.0, read_s / 4, first_token_s / 4, total_s / 4)
        # by id: an Attempt is a mutable dataclass, hence unhashable
        self._watched: dict[int, tuple[Attempt, asyncio.Timeout, int | None, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(
        self, attempt: Attempt, deadline: asyncio.Timeout, first_by_ns: int | None, total_by_ns: int
    ) -> None:
        """Watch `attempt` until `unwatch`: its first token due by `first_by_ns` (None: not
        a stream), the whole attempt by `total_by_ns` (perf_counter_ns)."""
        self._watched[id(attempt)] = (attempt, deadline, first_by_ns, total_by_ns)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, attempt: Attempt) -> None:
        self._watched.pop(id(attempt), None)

    async def _run(self) -> None:
        clock, loop = time.perf_counter_ns, asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._every_s)
            now = clock()
            silent_since = now - self._read_ns
            for attempt, deadline, first_by, total_by in list(self._watched.values()):
                if deadline.expired() or attempt.stalled:
                    continue
                result = attempt.result
                no_token = result is None or not result.token_times_ns
                if first_by is not None and now >= first_by and no_token:
                    deadline.reschedule(loop.time())  # send: "no first token within"
                elif now >= total_by:
                    deadline.reschedule(loop.time())
                elif attempt.last_read_ns < silent_since:
                    attempt.stalled = True
                    deadline.reschedule(loop.time())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
