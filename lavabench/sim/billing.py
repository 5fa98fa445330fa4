"""The simulator's billing read-back: Lava's `GET /v1/requests` from what the sim served.

Each forward-path completion the worker renders is recorded (request_id = x-lava-request-id,
response_id = the completion id, metadata = parsed x-lava-metadata, usage, cost from the
catalog prices) so `lavabench reconcile` can be tested end to end. A faulted stream is
billed as served (handler._render_fault): a stream cut mid-way (disconnect, error event,
malformed chunk) for the prompt and the tokens sent before the cut, which is what a client
can count and estimate; a stream that went out whole, in full; an HTTP error not at all. Why here and not in the
handler: the handler's job is the wire; this keeps its change to one route and one hook.

Like Lava, a record starts `pending` and becomes `completed` `pending_s` after it was
served. `skew` multiplies every billed cost so a mismatch can be injected on purpose. The
store is per worker (in memory): with `sim.workers > 1` a read-back sees only the requests
its worker served, so reconcile tests use one worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

LIST_PATH = b"/v1/requests"
MAX_LIMIT = 100
_TEN = Decimal("0.0000000001")
_MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class BillingSettings:
    """`sim.billing`: pending time of a new record, cost skew factor, on/off."""

    enabled: bool = True
    pending_s: float = 0.0
    skew: float = 1.0
    max_records: int = 1_000_000


def billing_settings_from_mapping(raw: Any) -> BillingSettings:
    """Validate `sim.billing` (ValueError naming the bad key)."""
    if raw is None:
        return BillingSettings()
    if not isinstance(raw, Mapping):
        raise ValueError("sim.billing: must be a mapping")
    known = {"enabled", "pending_s", "skew", "max_records"}
    for key in raw:
        if key not in known:
            raise ValueError(f"sim.billing.{key}: unknown setting (known: {sorted(known)})")
    out: dict[str, Any] = {}
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            raise ValueError("sim.billing.enabled: expected true or false")
        out["enabled"] = raw["enabled"]
    for key in ("pending_s", "skew"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"sim.billing.{key}: expected a number >= 0, got {v!r}")
            out[key] = float(v)
    if "max_records" in raw:
        v = raw["max_records"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"sim.billing.max_records: expected an integer >= 1, got {v!r}")
        out["max_records"] = v
    return BillingSettings(**out)


def _money(value: Decimal) -> str:
    return str(value.quantize(_TEN))


class BillingStore:
    """Every forward-path completion served by this worker, as Lava's request records."""

    def __init__(
        self, settings: BillingSettings, catalog: Mapping[str, Mapping[str, Any]] | None
    ) -> None:
        self._settings = settings
        self._prices: dict[str, tuple[Decimal, Decimal]] = {}
        for name, spec in (catalog or {}).items():
            if isinstance(spec, Mapping) and spec.get("input_usd_per_mtok") is not None:
                self._prices[str(name)] = (
                    Decimal(str(spec["input_usd_per_mtok"])),
                    Decimal(str(spec.get("output_usd_per_mtok", "0"))),
                )
        self._records: dict[str, dict[str, Any]] = {}
        self._served_at: dict[str, float] = {}

    def record(
        self,
        lava_id: str | None,
        model: str,
        wire_id: str,
        response_id: str,
        prompt_tokens: int,
        completion_tokens: int,
        metadata: bytes | None,
    ) -> None:
        """Remember one served completion (no-op off the forward path or when disabled)."""
        if lava_id is None or not self._settings.enabled:
            return
        if len(self._records) >= self._settings.max_records:
            return
        try:
            meta = json.loads(metadata) if metadata else {}
        except ValueError:
            meta = {}
        price_in, price_out = self._prices.get(model, (Decimal(0), Decimal(0)))
        skew = Decimal(str(self._settings.skew))
        input_cost = Decimal(prompt_tokens) * price_in / _MTOK * skew
        output_cost = Decimal(completion_tokens) * price_out / _MTOK * skew
        total = input_cost + output_cost
        now = time.time()
        self._served_at[lava_id] = time.monotonic()
        self._records[lava_id] = {
            "request_id": lava_id,
            "status": "pending",
            "provider": "fireworks",
            "endpoint": "POST https://api.fireworks.ai/inference/v1/chat/completions",
            "model": wire_id,
            "response_id": response_id,
            "model_usage": {
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "input_cost": _money(input_cost),
                "output_cost": _money(output_cost),
                "total_cost": _money(total),
            },
            "cost": _money(total),
            "metadata": meta if isinstance(meta, dict) else {},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }

    def _view(self, rid: str) -> dict[str, Any]:
        rec = self._records[rid]
        if time.monotonic() - self._served_at[rid] >= self._settings.pending_s:
            rec["status"] = "completed"
        return rec

    def serve(self, path: bytes, query: bytes | None) -> tuple[int, bytes]:
        """(status, JSON body) of `GET /v1/requests[?...]` or `GET /v1/requests/{id}`."""
        if path.startswith(LIST_PATH + b"/"):
            rid = unquote(path[len(LIST_PATH) + 1 :].decode("latin-1"))
            if rid not in self._records:
                return 404, _error("not_found", f"request {rid} not found")
            return 200, json.dumps(self._view(rid)).encode()
        params = parse_qs((query or b"").decode("latin-1"))
        try:
            limit = int(params.get("limit", ["10"])[0])
            cursor = int(params.get("cursor", ["0"])[0] or 0)
            filters = json.loads(params.get("metadata_filters", ["[]"])[0])
            pairs = [(str(k), str(v)) for k, v in filters]
        except (ValueError, TypeError):
            return 400, _error("invalid_request", "bad limit, cursor or metadata_filters")
        if not 1 <= limit <= MAX_LIMIT or cursor < 0:
            return 400, _error("invalid_request", f"limit must be 1..{MAX_LIMIT}")
        ids = [
            rid
            for rid, rec in self._records.items()
            if all(rec["metadata"].get(k) == v for k, v in pairs)
        ]
        page = ids[cursor : cursor + limit]
        more = cursor + limit < len(ids)
        body = {
            "data": [self._view(rid) for rid in page],
            "has_more": more,
            "next_cursor": str(cursor + limit) if more else None,
        }
        return 200, json.dumps(body).encode()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()
