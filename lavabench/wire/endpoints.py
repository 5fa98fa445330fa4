"""Where requests go and with which credential: `sim`, `lava` or `direct`.

The simulator and the real gateway share one code path: `sim` is the `forward` route with
the simulator's base URL and a throwaway key. Credentials come only from the environment,
are checked before the first request, and never enter the config or any file we write.

Lava credentials (api-facts.md): `LAVA_FORWARD_TOKEN` (used as is) or `LAVA_SECRET_KEY`.
Unmanaged/BYOK mode (`endpoint.byok=true`) wraps the secret key and `FIREWORKS_API_KEY` into a
forward token `base64({"secret_key": ..., "provider_key": ...})`; managed mode sends the
secret key alone, or a token when `customer_id`/`meter_slug` are set.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from lavabench.errors import ConfigError, CredentialsError
from lavabench.wire.protocol import FIREWORKS_CHAT_URL, chat_completions_url, forward_url

LAVA_SECRET_KEY = "LAVA_SECRET_KEY"
LAVA_FORWARD_TOKEN = "LAVA_FORWARD_TOKEN"
FIREWORKS_API_KEY = "FIREWORKS_API_KEY"


@dataclass
class EndpointSettings:
    """The `endpoint` config node (conf/endpoint/*.yaml). No secrets, only variable names.

    A Hydra structured-config schema, hence plain `str` kinds checked here, and not frozen.
    """

    kind: str = "sim"
    route: str = "forward"
    base_url: str | None = None
    target_url: str = FIREWORKS_CHAT_URL
    api_key_env: str | None = None
    # endpoint=lava reads its credential from these variables (the names, never the values,
    # so `lavabench run --cfg job` shows where the credential comes from)
    forward_token_env: str = LAVA_FORWARD_TOKEN
    secret_key_env: str = LAVA_SECRET_KEY
    provider_key_env: str = FIREWORKS_API_KEY
    byok: bool = False
    customer_id: str | None = None
    meter_slug: str | None = None
    send_metadata: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("sim", "lava", "direct"):
            raise ConfigError(f"endpoint.kind must be sim, lava or direct, got {self.kind!r}")
        if self.route not in ("forward", "openai"):
            raise ConfigError(f"endpoint.route must be forward or openai, got {self.route!r}")


@dataclass(frozen=True, repr=False)
class Endpoint:
    """A resolved endpoint: the URL and the auth header. `repr` never shows the credential."""

    kind: str
    url: str
    credential: str | None
    send_metadata: bool
    base_url: str = ""  # what `url` was built from (runner.workers resolve it again)

    def __repr__(self) -> str:
        return f"Endpoint(kind={self.kind!r}, url={self.url!r}, credential=<redacted>)"

    def base_headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream, application/json",
            "accept-encoding": "identity",  # compressed SSE would hide token arrival times
        }
        if self.credential:
            headers["authorization"] = f"Bearer {self.credential}"
        return headers

    def headers_for(self, *, run_id: str, model: str, dataset: str) -> dict[str, str]:
        headers = self.base_headers()
        if self.send_metadata:
            headers["x-lava-metadata"] = lava_metadata(run_id=run_id, model=model, dataset=dataset)
        return headers


def lava_metadata(**pairs: str) -> str:
    """`x-lava-metadata`: a JSON object of strings; keys [A-Za-z0-9_], values 1-255 chars."""
    clean = {k: v[:255] for k, v in pairs.items() if v}
    return json.dumps(clean, separators=(",", ":"), sort_keys=True)


def build_forward_token(
    secret_key: str,
    *,
    provider_key: str | None = None,
    customer_id: str | None = None,
    meter_slug: str | None = None,
) -> str:
    """Lava forward token: standard base64 of a JSON object; only `secret_key` is required."""
    payload: dict[str, str] = {"secret_key": secret_key}
    if customer_id:
        payload["customer_id"] = customer_id
    if meter_slug:
        payload["meter_slug"] = meter_slug
    if provider_key:
        payload["provider_key"] = provider_key
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def decode_forward_token(token: str) -> dict[str, object] | None:
    """The token's JSON object, or None if it is not a forward token (e.g. a bare key)."""
    try:
        obj = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def resolve_endpoint(
    settings: EndpointSettings, environ: Mapping[str, str], *, base_url: str | None = None
) -> Endpoint:
    """Build the URL and pick the credential; raise before any request if one is missing."""
    url_base = base_url or settings.base_url
    if not url_base:
        raise ConfigError(
            f"endpoint.base_url is not set for endpoint={settings.kind}; set it, "
            "or use endpoint=sim to start the built-in simulator"
        )
    if settings.route == "forward":
        url = forward_url(url_base, settings.target_url)
    elif settings.route == "openai":
        url = chat_completions_url(url_base)
    else:
        raise ConfigError(f"endpoint.route must be 'forward' or 'openai', got {settings.route!r}")

    if settings.kind == "sim":
        # A throwaway, well-formed key: the simulator checks shape, and nothing real is sent.
        credential: str | None = "aks_test_sim" + secrets.token_hex(8)
    elif settings.kind == "lava":
        credential = _lava_credential(settings, environ)
    elif settings.kind == "direct":
        credential = _direct_credential(settings, environ)
    else:
        raise ConfigError(f"endpoint.kind must be sim, lava or direct, got {settings.kind!r}")
    return Endpoint(
        kind=settings.kind,
        url=url,
        credential=credential,
        send_metadata=settings.send_metadata,
        base_url=url_base,
    )


def _lava_credential(settings: EndpointSettings, environ: Mapping[str, str]) -> str:
    token_env, key_env, provider_env = (
        settings.forward_token_env, settings.secret_key_env, settings.provider_key_env
    )  # fmt: skip
    token = environ.get(token_env, "").strip()
    secret_key = environ.get(key_env, "").strip()
    if token:
        decoded = decode_forward_token(token)
        if settings.byok and (decoded is None or not decoded.get("provider_key")):
            raise CredentialsError(
                f"endpoint.byok=true but {token_env} carries no provider_key; unset "
                f"it and set {key_env} and {provider_env} instead"
            )
        return token
    if not secret_key:
        raise CredentialsError(
            f"endpoint=lava needs a credential: set {key_env} (aks_live_...) or "
            f"{token_env} in the environment"
            + (f", and {provider_env} for endpoint.byok=true" if settings.byok else "")
            + ". Nothing was sent."
        )
    provider_key = None
    if settings.byok:
        provider_key = environ.get(provider_env, "").strip()
        if not provider_key:
            raise CredentialsError(
                f"endpoint.byok=true (unmanaged mode) needs {provider_env} in the "
                "environment: it goes into the forward token as provider_key. Nothing was sent."
            )
    if provider_key or settings.customer_id or settings.meter_slug:
        return build_forward_token(
            secret_key,
            provider_key=provider_key,
            customer_id=settings.customer_id,
            meter_slug=settings.meter_slug,
        )
    return secret_key


def _direct_credential(settings: EndpointSettings, environ: Mapping[str, str]) -> str | None:
    if not settings.api_key_env:
        return None
    key = environ.get(settings.api_key_env, "").strip()
    if not key:
        raise CredentialsError(
            f"endpoint=direct reads its key from ${settings.api_key_env}, which is not set; "
            "set it, or set endpoint.api_key_env=null for a server without auth. Nothing was sent."
        )
    return key
