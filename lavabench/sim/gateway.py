"""What Lava's forward proxy checks before it forwards (api-facts-detail.md §1.2–1.5).

The credential, the `u` target and the optional metadata; plus the request ids Lava and
Fireworks put on responses. Error messages never echo the credential back: a test greps the
body for it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from urllib.parse import unquote, urlsplit

import orjson

FIREWORKS_CHAT_URL = "https://api.fireworks.ai/inference/v1/chat/completions"
SECRET_KEY_RE = re.compile(r"aks_(live|test)_[A-Za-z0-9_]{8,}")
_METADATA_KEY_RE = re.compile(r"[A-Za-z0-9_]{1,255}")
_TOKEN_FIELDS_STR = (
    "customer_id", "meter_slug", "provider_key", "connection_secret", "product_secret",
    "connection_id", "meter_secret",
)  # fmt: skip
_CACHE_LIMIT = 1024
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_B32_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


class Rejection(Exception):
    """Lava refuses the request: (status, code, message) go into Lava's error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class CredentialCheck:
    """Accepts a secret key or a forward token; remembers recent verdicts (same key, often)."""

    def __init__(self, required_secret_key: str | None) -> None:
        self._required = required_secret_key
        self._verdicts: dict[bytes, bool] = {}

    def check(self, authorization: bytes | None) -> None:
        """Raise Rejection(401) unless `authorization` is `Bearer <valid credential>`."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            raise Rejection(
                401, "unauthorized", "Missing credential: send 'Authorization: Bearer <key>'"
            )
        credential = authorization[7:].strip()
        ok = self._verdicts.get(credential)
        if ok is None:
            ok = self._valid(credential)
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[credential] = ok
        if not ok:
            raise Rejection(
                401,
                "unauthorized",
                "Invalid credential: expected a Lava secret key or a forward token",
            )

    def _valid(self, credential: bytes) -> bool:
        try:
            text = credential.decode("ascii")
        except UnicodeDecodeError:
            return False
        if SECRET_KEY_RE.fullmatch(text):
            return self._required is None or text == self._required
        secret = _forward_token_secret(text)
        if secret is None:
            return False
        return self._required is None or secret == self._required


def _forward_token_secret(text: str) -> str | None:
    """The `secret_key` of a well-formed forward token (standard base64 of JSON), else None."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        token = orjson.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(token, dict):
        return None
    secret = token.get("secret_key")
    if not isinstance(secret, str) or not SECRET_KEY_RE.fullmatch(secret):
        return None
    for name in _TOKEN_FIELDS_STR:
        value = token.get(name)
        if value is not None and not isinstance(value, str):
            return None
    disable = token.get("disable_billing")
    if disable is not None and not isinstance(disable, bool):
        return None
    return secret


def parse_query(query: bytes | None) -> dict[str, str]:
    """Query parameters, percent-decoded once (the first occurrence of a name wins)."""
    params: dict[str, str] = {}
    if not query:
        return params
    for pair in query.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        params.setdefault(unquote(name), unquote(value))
    return params


def check_target(params: dict[str, str]) -> None:
    """`u` must decode to an absolute https URL, and to Fireworks' chat endpoint."""
    target = params.get("u")
    if not target:
        raise Rejection(400, "invalid_forward_url", "Missing 'u': the provider URL to forward to")
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() != "https" or not parts.hostname:
        raise Rejection(
            400, "invalid_forward_url", "'u' must be an absolute https URL, percent-encoded"
        )
    if (
        parts.hostname != "api.fireworks.ai"
        or port not in (None, 443)
        or parts.path != "/inference/v1/chat/completions"
        or parts.query
    ):
        raise Rejection(
            400,
            "forward_endpoint_not_supported",
            f"This gateway only forwards to {FIREWORKS_CHAT_URL}",
        )


def check_metadata(raw: bytes | str | None) -> None:
    """`x-lava-metadata`: a JSON object of <= 100 string pairs, keys [A-Za-z0-9_]."""
    if raw is None:
        return
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    bad = not isinstance(data, dict) or len(data) > 100
    if not bad:
        for key, value in data.items():
            if not _METADATA_KEY_RE.fullmatch(key) or not isinstance(value, str):
                bad = True
                break
            if not 1 <= len(value) <= 255:
                bad = True
                break
    if bad:
        raise Rejection(
            400,
            "invalid_metadata",
            "x-lava-metadata must be a JSON object of up to 100 string pairs: "
            "keys [A-Za-z0-9_], values 1-255 characters",
        )


class RequestIds:
    """Unique ids without coordination between workers: a random per-process nonce + counter.

    Ids are identifiers, not randomness that shapes answers, so they need not follow the
    seed; they must not collide across workers or across runs appending to one log.
    """

    def __init__(self) -> None:
        self._nonce = int.from_bytes(os.urandom(4), "big")
        self._count = 0
        self._ms = -1
        self._time_part = ""

    def _next(self) -> int:
        self._count += 1
        return self._count

    def completion_id(self) -> str:
        """`chatcmpl-` + 24 hex digits (Fireworks' ids vary in shape; clients must not care)."""
        return f"chatcmpl-{self._nonce:08x}{self._next():016x}"

    def lava_request_id(self) -> str:
        """`req_` + 26 ULID-style Crockford base32 characters: 48-bit ms time + 80 bits."""
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms = ms
            self._time_part = "".join(_CROCKFORD[(ms >> s) & 31] for s in range(45, -1, -5))
        tail = ((self._nonce << 48) | (self._next() & 0xFFFFFFFFFFFF)).to_bytes(10, "big")
        return (
            "req_" + self._time_part + base64.b32encode(tail).translate(_B32_TO_CROCKFORD).decode()
        )
