"""Fault injection: which faults a request meets, and what each does to the bytes.

Configured under `sim.faults` (all off by default):

    faults:
      seed: 7
      probabilities: {rate_limit: 0.05, server_error: 0.02, stall: 0.01, ...}
      fail_first: null      # N: only the first N sightings of a request body are faulted
      models: []            # catalog names to fault; empty = all
      retry_after_s: 1      # sent with 429 / 503 (seconds, or as an HTTP date)
      server_error_statuses: [500, 502, 503, 504]
      stall_s: 5            # silence in the middle of a stream
      slow_first_token_s: 5 # extra delay before the first token

The draw is a hash of (seed, request body, how often this body was seen), so a retry of the
same request draws again, and a run is reproducible. `fail_first` makes faults transient in
a known way (fail N times, then succeed), which the fault-matrix tests use to assert exact
attempt counts. Every fault is logged (`fault` in the response log).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from lavabench.sim.determinism import unit

# Order matters only for the cumulative draw; names are the config keys and the log values.
FAULT_KINDS = (
    "rate_limit",  # 429, Retry-After in seconds
    "rate_limit_http_date",  # 429, Retry-After as an HTTP date
    "server_error",  # one of server_error_statuses
    "insufficient_balance",  # 402, Lava's envelope
    "unauthorized",  # 401, Lava's envelope
    "reset_before_headers",  # TCP reset before any byte of the response
    "disconnect_mid_stream",  # connection dropped after half the tokens
    "no_done",  # the stream ends cleanly but without `data: [DONE]`
    "malformed_json",  # one event's JSON is cut short
    "stall",  # no bytes for stall_s in the middle of the stream
    "slow_first_token",  # slow_first_token_s more before the first token
    "error_mid_stream",  # an error object after a 200, then the stream ends
)
HTTP_FAULTS = frozenset(
    {"rate_limit", "rate_limit_http_date", "server_error", "insufficient_balance", "unauthorized"}
)


@dataclass(frozen=True)
class FaultSettings:
    seed: int = 7
    probabilities: Mapping[str, float] = field(default_factory=dict)
    fail_first: int | None = None
    models: tuple[str, ...] = ()
    retry_after_s: float = 1.0
    server_error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    stall_s: float = 5.0
    slow_first_token_s: float = 5.0

    @property
    def enabled(self) -> bool:
        return any(p > 0 for p in self.probabilities.values())


def fault_settings_from_mapping(raw: Any) -> FaultSettings:
    """Validate `sim.faults`; ValueError names the key."""
    if raw is None:
        return FaultSettings()
    if not isinstance(raw, Mapping):
        raise ValueError("sim.faults: expected a mapping")
    known = {f for f in FaultSettings.__dataclass_fields__}
    for key in raw:
        if key not in known:
            raise ValueError(
                f"sim.faults.{key}: unknown setting (known: {', '.join(sorted(known))})"
            )
    probabilities = dict(raw.get("probabilities") or {})
    for kind, p in probabilities.items():
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"sim.faults.probabilities.{kind}: unknown fault (known: {', '.join(FAULT_KINDS)})"
            )
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"sim.faults.probabilities.{kind}: expected a number in [0, 1]")
    if sum(probabilities.values()) > 1 + 1e-9:
        raise ValueError("sim.faults.probabilities: the probabilities add up to more than 1")
    statuses = tuple(int(s) for s in raw.get("server_error_statuses") or (500, 502, 503, 504))
    if not statuses or any(s < 500 or s > 599 for s in statuses):
        raise ValueError("sim.faults.server_error_statuses: expected 5xx statuses")
    fail_first = raw.get("fail_first")
    if fail_first is not None and (not isinstance(fail_first, int) or fail_first < 1):
        raise ValueError("sim.faults.fail_first: expected a positive integer or null")
    numbers = {}
    for key in ("retry_after_s", "stall_s", "slow_first_token_s"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"sim.faults.{key}: expected a number >= 0")
            numbers[key] = float(value)
    return FaultSettings(
        seed=int(raw.get("seed", 7)),
        probabilities=probabilities,
        fail_first=fail_first,
        models=tuple(raw.get("models") or ()),
        server_error_statuses=statuses,
        **numbers,
    )


class FaultPicker:
    """Per-worker: counts sightings of each request body and draws its fault, if any."""

    def __init__(self, settings: FaultSettings) -> None:
        self._s = settings
        self._seen: dict[int, int] = {}
        cumulative, total = [], 0.0
        for kind in FAULT_KINDS:
            total += settings.probabilities.get(kind, 0.0)
            cumulative.append((total, kind))
        self._cumulative = cumulative

    def pick(self, body: bytes, model_name: str) -> str | None:
        if not self._s.enabled or (self._s.models and model_name not in self._s.models):
            return None
        key = hash(body)
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        if self._s.fail_first is not None and seen >= self._s.fail_first:
            return None
        u = unit(self._s.seed, body, seen)
        for bound, kind in self._cumulative:
            if u < bound:
                return kind
        return None

    def server_error_status(self, body: bytes) -> int:
        statuses = self._s.server_error_statuses
        return statuses[int(unit(self._s.seed, body, "status") * len(statuses))]


def retry_after_header(kind: str, seconds: float) -> bytes:
    """`Retry-After` as delta-seconds, or as an HTTP date for `rate_limit_http_date`."""
    if kind == "rate_limit_http_date":
        import time

        # HTTP dates have 1 s resolution: round up so the client never waits too little.
        return b"retry-after: %b\r\n" % formatdate(time.time() + seconds + 1, usegmt=True).encode()
    return b"retry-after: %b\r\n" % (b"%g" % seconds)


MALFORMED_EVENT = b'data: {"id":"broken","choices":[{"index":0,"delta":{"content":"\n\n'
ERROR_EVENT = (
    b'data: {"error":{"object":"error","type":"server_error","code":"internal_error",'
    b'"message":"The server had an error while processing your request."}}\n\n'
)
