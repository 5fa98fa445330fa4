"""One exception tree for lavabench; every message says what to do next.

    LavabenchError                  anything the CLI turns into exit code 2 with its message
    ├── ConfigError                 a config key or CLI value is wrong (names the key)
    ├── DatasetError                a dataset file or row is wrong (names file:line:field)
    ├── CredentialsError            a required environment variable is missing or malformed
    ├── StoreError                  the results directory cannot be written or read
    └── GatewayError                one request attempt failed; `kind` says how
        ├── AuthFailed              401/403: the credential is wrong -> stop the run
        ├── ModelUnavailable        403 naming the model: not available to this credential
        │                           -> pause that model, the others continue
        ├── InsufficientBalance     402: the wallet is empty -> stop the run
        ├── RateLimited             429: retry after Retry-After / backoff
        ├── Unavailable             408/409/5xx, connect errors, timeouts -> retry
        ├── BadRequest              400/404/413/422 ...: our request is wrong -> never retry
        └── StreamBroken            200 but the stream was cut, malformed, or carried an error

The client maps every failure of one attempt to exactly one GatewayError kind (in one
function, `client.classify_response` / `client.classify_exception`); the retry policy decides
from the kind alone. Records store `kind` as their `error_type`, so the names are part of the
record contract: do not rename them.
"""

from __future__ import annotations


class LavabenchError(Exception):
    """Base of every error lavabench raises on purpose."""


class ConfigError(LavabenchError):
    """A configuration value is invalid; the message names the key and the fix."""


class DatasetError(LavabenchError):
    """A dataset file or row is invalid; the message names file, line and field."""


class CredentialsError(LavabenchError):
    """Credentials are missing or malformed; the message names the environment variables."""


class StoreError(LavabenchError):
    """Records cannot be written or read; the message names the path."""


class GatewayError(LavabenchError):
    """One request attempt failed. `kind` is stable and stored in records as `error_type`."""

    kind = "gateway_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s


class AuthFailed(GatewayError):
    """401/403: the gateway refused the credential. Fatal for the whole run."""

    kind = "auth_failed"


class ModelUnavailable(GatewayError):
    """403 that names the model: this credential may not use it (Fireworks has answered so
    for one inaccessible model while the others worked). That model is paused; not fatal."""

    kind = "model_unavailable"


class InsufficientBalance(GatewayError):
    """402: the Lava wallet (or Fireworks account) cannot pay. Fatal for the whole run."""

    kind = "insufficient_balance"


class RateLimited(GatewayError):
    """429: too many requests or tokens; retried, honouring Retry-After."""

    kind = "rate_limited"


class Unavailable(GatewayError):
    """408/409/5xx, connection failures and timeouts: transient, retried with backoff."""

    kind = "unavailable"


class BadRequest(GatewayError):
    """4xx other than the above: the request itself is wrong, so a retry cannot help."""

    kind = "bad_request"


class StreamBroken(GatewayError):
    """A 200 whose stream ended without [DONE], carried an error, or was not valid SSE/JSON."""

    kind = "stream_broken"


FATAL_KINDS = frozenset({AuthFailed.kind, InsufficientBalance.kind})
