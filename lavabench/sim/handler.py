"""From one parsed HTTP request to one planned response: routing, Lava, then Fireworks.

    POST /v1/forward?u=...                 Lava's forward proxy: credential, target, metadata,
                                           then the Fireworks behaviour; x-lava-request-id on
                                           every response, errors included
    POST /inference/v1/chat/completions    Fireworks called directly: any non-empty bearer
    GET  /healthz                          200 "ok"
    GET  /v1/requests[/{id}]               Lava's billing read-back of what was served (billing.py)
    anything else                          404

A chat request goes parse -> model lookup -> plan (completion.py) -> render. `_render` is the
one place where a planned completion becomes bytes and times, so a fault policy (429, 5xx,
a cut stream) decides there, with the plan in hand, and nothing upstream changes.

`gateway_delay_s` (forward path, successful responses) models the gateway's own overhead: the
whole response starts that much later, while the reported server timings (headers,
perf_metrics) stay the provider's, so a client's `ttft - server ttft` should show it. With a
delay the headers go out with the first chunk, as from a proxy waiting on the provider.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from lavabench.sim import wire
from lavabench.sim.answers import AnswerKey
from lavabench.sim.billing import LIST_PATH, BillingStore
from lavabench.sim.completion import Completion, ModelEntry, Planner, fit_context, model_table
from lavabench.sim.eventlog import EventLog, completion_record, error_record
from lavabench.sim.faults import (
    ERROR_EVENT,
    HTTP_FAULTS,
    MALFORMED_EVENT,
    FaultPicker,
    retry_after_header,
)
from lavabench.sim.gateway import (
    CredentialCheck,
    Rejection,
    RequestIds,
    check_metadata,
    check_target,
    parse_query,
)
from lavabench.sim.settings import SimSettings
from lavabench.sim.tools import ToolKey
from lavabench.sim.validation import InvalidRequest, parse_chat

FORWARD_PATH = b"/v1/forward"
FIREWORKS_PATH = b"/inference/v1/chat/completions"
HEALTH_PATH = b"/healthz"
MODEL_NOT_FOUND = "Model not found, inaccessible, and/or not deployed"


class Request:
    """One HTTP request as the connection parsed it; `received_at` is time.monotonic() (s)."""

    __slots__ = (
        "authorization",
        "body",
        "keep_alive",
        "metadata",
        "method",
        "path",
        "query",
        "received_at",
    )

    def __init__(
        self,
        method: bytes,
        path: bytes,
        query: bytes | None,
        authorization: bytes | None,
        metadata: bytes | None,
        body: bytes,
        keep_alive: bool,
        received_at: float,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.authorization = authorization
        self.metadata = metadata
        self.body = body
        self.keep_alive = keep_alive
        self.received_at = received_at


class Response:
    """What to write: `head` at once, then each (loop time, bytes) of `parts` when due.

    `record` goes to the event log once the last byte is written.
    """

    __slots__ = ("abort_after", "head", "keep_alive", "model", "parts", "record")

    def __init__(
        self,
        head: bytes,
        parts: list[tuple[float, bytes]] | None,
        record: dict[str, Any] | None,
        keep_alive: bool,
        abort_after: bool = False,
        model: str | None = None,
    ) -> None:
        self.head = head
        self.parts = parts
        self.record = record
        self.keep_alive = keep_alive
        self.abort_after = abort_after  # reset the connection after the last byte (faults)
        self.model = model  # a completion: the model whose capacity it uses (sim/capacity.py)


@dataclass(frozen=True)
class SimApp:
    """State shared by all workers, built once before they fork: models, answer key."""

    settings: SimSettings
    models: dict[str, ModelEntry]
    key: AnswerKey | None
    catalog: Mapping[str, Mapping[str, Any]] | None = None  # prices for the billing read-back
    tools: ToolKey | None = None  # BFCL items among the answer keys (sim/tools.py)


def build_app(settings: SimSettings, catalog: Mapping[str, Mapping[str, Any]]) -> SimApp:
    """Load the answer keys and index the catalog; ValueError on bad input."""
    models = model_table(settings, catalog)
    if not models:
        raise ValueError("catalog: no models; the simulator needs at least one")
    key = AnswerKey.load(settings.answer_keys, settings.seed) if settings.answer_keys else None
    tools = ToolKey.load(settings.answer_keys) if settings.answer_keys else None
    return SimApp(settings, models, key, catalog, tools or None)


class Handler:
    """Per-worker request handler (owns the worker's ids and its log file)."""

    def __init__(self, app: SimApp, log: EventLog) -> None:
        self._models = app.models
        self._planner = Planner(app.settings, app.key, app.tools)
        self._credentials = CredentialCheck(app.settings.require_secret_key)
        self._zero = app.settings.zero_delays
        self._gateway_delay_s = app.settings.gateway_delay_s
        self._ids = RequestIds()
        self._log = log
        self._fault_settings = app.settings.faults
        self._faults = FaultPicker(app.settings.faults)
        self._billing = BillingStore(app.settings.billing, app.catalog)
        self._rejected = frozenset(app.settings.rejected_fields)

    def handle(self, req: Request) -> Response:
        """Route one request."""
        path = req.path
        if req.method == b"POST":
            if path == FORWARD_PATH:
                return self._forward(req)
            if path == FIREWORKS_PATH:
                return self._fireworks(req)
        elif path == HEALTH_PATH and req.method == b"GET":
            return self._plain(req, 200, b"ok")
        elif req.method == b"GET" and path.startswith(LIST_PATH):  # billing read-back
            status, body = self._billing.serve(path, req.query)
            data = wire.full_response(status, wire.JSON_TYPE, body, b"", req.keep_alive)
            return Response(data, None, None, req.keep_alive)
        return self._plain(req, 404, b"not found")

    def _plain(self, req: Request, status: int, body: bytes) -> Response:
        data = wire.full_response(status, wire.TEXT_TYPE, body, b"", req.keep_alive)
        return Response(data, None, None, req.keep_alive)

    def _forward(self, req: Request) -> Response:
        lava_id = self._ids.lava_request_id()
        extra = b"x-lava-request-id: %b\r\n" % lava_id.encode()
        try:
            self._credentials.check(req.authorization)
            params = parse_query(req.query)
            check_target(params)
            check_metadata(req.metadata if req.metadata is not None else params.get("metadata"))
        except Rejection as r:
            body = wire.lava_error(r.status, r.code, r.message)
            return self._error(req, r.status, body, extra, "forward", lava_id, None)
        return self._chat(req, extra, "forward", lava_id)

    def _fireworks(self, req: Request) -> Response:
        auth = req.authorization
        if not auth or auth[:7].lower() != b"bearer " or not auth[7:].strip():
            request_id = self._ids.completion_id()
            body = wire.fireworks_error(
                "The API key you provided is invalid.", request_id, "authentication_error"
            )
            return self._error(req, 401, body, b"", "fireworks", None, request_id)
        return self._chat(req, b"", "fireworks", None)

    def _chat(self, req: Request, extra: bytes, path: str, lava_id: str | None) -> Response:
        completion_id = self._ids.completion_id()
        try:
            chat = parse_chat(req.body, self._rejected)
        except InvalidRequest as exc:
            body = wire.fireworks_error(str(exc), completion_id)
            return self._error(req, 400, body, extra, path, lava_id, completion_id)
        entry = self._models.get(chat.model)
        if entry is None:
            body = wire.fireworks_error(MODEL_NOT_FOUND, completion_id, "not_found_error")
            return self._error(req, 404, body, extra, path, lava_id, completion_id)
        too_long = fit_context(chat, entry)
        if too_long is not None:
            body = wire.fireworks_error(too_long, completion_id)
            return self._error(req, 400, body, extra, path, lava_id, completion_id)
        completion = self._planner.plan(
            chat, entry, req.body, completion_id, int(time.time()), req.received_at
        )
        return self._render(req, completion, extra, path, lava_id)

    def _error(
        self,
        req: Request,
        status: int,
        body: bytes,
        extra: bytes,
        path: str,
        lava_id: str | None,
        request_id: str | None,
    ) -> Response:
        data = wire.full_response(status, wire.JSON_TYPE, body, extra, req.keep_alive)
        record = None
        if self._log.enabled:
            record = error_record(status, path, lava_id, request_id, _model_of(req.body))
        return Response(data, None, record, req.keep_alive)

    def _render(
        self, req: Request, c: Completion, extra: bytes, path: str, lava_id: str | None
    ) -> Response:
        """The planned completion as bytes and write times (see the module docstring)."""
        fault = self._faults.pick(req.body, c.model.name)
        if fault is not None:
            return self._render_fault(req, c, fault, extra, path, lava_id)
        self._bill(req, c, lava_id, c.completion_tokens)
        record = completion_record(c, path, lava_id) if self._log.enabled else None
        keep_alive = req.keep_alive
        delay = self._gateway_delay_s if path == "forward" else 0.0
        if record is not None and delay:
            record["gateway_delay_s"] = delay
        start = req.received_at + delay
        if not c.stream:
            headers = wire.completion_headers(c) + extra
            data = wire.full_response(
                200, wire.JSON_TYPE, wire.completion_body(c), headers, keep_alive
            )
            if self._zero and not delay:
                return Response(data, None, record, keep_alive)
            due = start + (0.0 if self._zero else c.processing_s)
            return Response(b"", [(due, data)], record, keep_alive, model=c.model.name)
        headers = wire.stream_headers(c, extra, keep_alive)
        role, events, closing = wire.stream_events(c)
        if self._zero:
            body = wire.http_chunk(role + b"".join(events) + closing) + wire.LAST_CHUNK
            if delay:
                return Response(b"", [(start, headers + body)], record, keep_alive)
            return Response(headers + body, None, record, keep_alive)
        chunk = wire.http_chunk
        due = start + c.ttft_s
        if delay:  # nothing leaves before the delay is over: headers ride with the first chunk
            parts = [(due, headers + chunk(role) + chunk(events[0]))]
            headers, role = b"", b""
        else:
            parts = [(due, chunk(events[0]))]
        for gap, event in zip(c.itl_s, events[1:], strict=True):
            due += gap
            parts.append((due, chunk(event)))
        last_due, last = parts[-1]
        parts[-1] = (last_due, last + chunk(closing) + wire.LAST_CHUNK)
        head = headers + (chunk(role) if role else b"")
        return Response(head, parts, record, keep_alive, model=c.model.name)

    def _render_fault(
        self, req: Request, c: Completion, fault: str, extra: bytes, path: str, lava_id: str | None
    ) -> Response:
        """A planned completion bent by one fault (faults.py lists them)."""
        s = self._fault_settings
        if fault in HTTP_FAULTS:
            status, body, headers = self._fault_error(req, c, fault, extra)
            resp = self._error(req, status, body, headers, path, lava_id, c.completion_id)
            if resp.record is not None:
                resp.record["fault"] = fault
            return resp
        record = completion_record(c, path, lava_id) if self._log.enabled else None
        if record is not None:
            record["fault"] = fault
        keep_alive = req.keep_alive
        start = req.received_at + (0.0 if self._zero else c.ttft_s)
        if fault == "slow_first_token":
            start += s.slow_first_token_s
        if fault == "reset_before_headers":
            if record is not None:
                record["status"] = None
            return Response(b"", None, record, False, abort_after=True)
        if not c.stream:
            # billed as served: a complete body in full; a broken one for its prompt only
            whole = fault in ("stall", "slow_first_token")
            self._bill(req, c, lava_id, c.completion_tokens if whole else 0)
            body = wire.completion_body(c)
            headers = wire.completion_headers(c) + extra
            if fault == "malformed_json":
                body = body[: len(body) // 2]
                data = wire.full_response(200, wire.JSON_TYPE, body, headers, keep_alive)
            elif fault == "error_mid_stream":
                error = wire.fireworks_error("internal error", c.completion_id, "server_error")
                data = wire.full_response(200, wire.JSON_TYPE, error, headers, keep_alive)
            else:
                data = wire.full_response(200, wire.JSON_TYPE, body, headers, keep_alive)
            due = start + (0.0 if self._zero else math.fsum(c.itl_s))
            if fault == "stall":
                due += s.stall_s
            if fault in ("disconnect_mid_stream", "no_done"):
                return Response(
                    b"", [(due, data[: len(data) - len(body) // 2])], record, False, True
                )
            return Response(b"", [(due, data)], record, keep_alive)
        role, events, closing = wire.stream_events(c)
        half = max(1, len(events) // 2)
        # Billed as a provider bills a stream it stopped: the prompt and the tokens sent
        # before the cut (a client counts the same chunks for its estimate); a stream that
        # went out whole (stall, slow first token, no [DONE]) in full.
        cut = fault in ("disconnect_mid_stream", "error_mid_stream", "malformed_json")
        sent = sum(c.chunk_sizes[:half]) if c.chunk_sizes else min(half, c.completion_tokens)
        self._bill(req, c, lava_id, sent if cut else c.completion_tokens)
        gaps = [0.0] * len(events) if self._zero else [0.0, *c.itl_s]
        dues, due = [], start
        for i, gap in enumerate(gaps):
            due += gap + (s.stall_s if fault == "stall" and i == half else 0.0)
            dues.append(due)
        chunk = wire.http_chunk
        abort = False
        if fault == "disconnect_mid_stream":
            events, dues, closing, abort = events[:half], dues[:half], b"", True
        elif fault == "error_mid_stream":
            events, dues, closing = events[:half], dues[:half], ERROR_EVENT
        elif fault == "malformed_json":
            events = [*events[:half], MALFORMED_EVENT, *events[half + 1 :]]
        elif fault == "no_done":
            closing = closing.removesuffix(wire.DONE_EVENT)
        parts = [(d, chunk(e)) for d, e in zip(dues, events, strict=True)]
        tail = (chunk(closing) if closing else b"") + (b"" if abort else wire.LAST_CHUNK)
        parts[-1] = (parts[-1][0], parts[-1][1] + tail)
        head = wire.stream_headers(c, extra, keep_alive and not abort) + chunk(role)
        return Response(head, parts, record, keep_alive and not abort, abort_after=abort)

    def _bill(self, req: Request, c: Completion, lava_id: str | None, tokens: int) -> None:
        self._billing.record(
            lava_id, c.model.name, c.model.wire_id, c.completion_id,
            c.prompt_tokens, tokens, req.metadata,
        )  # fmt: skip

    def _fault_error(
        self, req: Request, c: Completion, fault: str, extra: bytes
    ) -> tuple[int, bytes, bytes]:
        """(status, body, extra headers) of an HTTP-level fault."""
        s = self._fault_settings
        if fault in ("rate_limit", "rate_limit_http_date"):
            body = b'{"error":"Too Many Requests","message":"You have exceeded your usage limits."}'
            return 429, body, extra + retry_after_header(fault, s.retry_after_s)
        if fault == "server_error":
            status = self._faults.server_error_status(req.body)
            body = wire.fireworks_error("Service overloaded", c.completion_id, "server_error")
            retry = retry_after_header("rate_limit", s.retry_after_s) if status == 503 else b""
            return status, body, extra + retry
        if fault == "insufficient_balance":
            message = "Insufficient balance: add funds to your wallet"
            return 402, wire.lava_error(402, "insufficient_balance", message), extra
        return 401, wire.lava_error(401, "unauthorized", "Invalid credential"), extra


def _model_of(body: bytes) -> str | None:
    """Best-effort model name for an error log line (the body may be anything)."""
    try:
        data = orjson.loads(body)
    except ValueError:
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None
