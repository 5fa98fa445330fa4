"""Pure retry policy: (error kind, attempt number, Retry-After) -> retry after N s | give up | stop.

Auth and billing errors stop the whole run; a malformed request is never retried; transient
errors back off exponentially with full jitter, and never sooner than the server's
Retry-After (capped, so a hostile header cannot park the run for an hour).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lavabench.errors import FATAL_KINDS, BadRequest, ConfigError

RETRYABLE_KINDS = ("rate_limited", "unavailable", "stream_broken")


@dataclass
class RetryPolicy:
    """`runner.retry` in config (a Hydra structured-config schema, hence not frozen)."""

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    retry_after_cap_s: float = 120.0
    jitter: bool = True
    retry_on: list[str] = field(default_factory=lambda: list(RETRYABLE_KINDS))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("runner.retry.max_attempts must be >= 1")
        if min(self.backoff_base_s, self.backoff_cap_s, self.retry_after_cap_s) < 0:
            raise ConfigError("runner.retry: backoff and cap values must be >= 0")
        unknown = set(self.retry_on) - set(RETRYABLE_KINDS)
        if unknown:
            raise ConfigError(
                f"runner.retry.retry_on: {sorted(unknown)} cannot be retried; "
                f"choose from {list(RETRYABLE_KINDS)} (auth, billing and bad requests never are)"
            )


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "give_up", "stop_run"]
    delay_s: float = 0.0


def decide(
    kind: str,
    attempt: int,
    policy: RetryPolicy,
    *,
    retry_after_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """What to do after attempt number `attempt` (1-based) failed with error `kind`."""
    if kind in FATAL_KINDS:
        return Decision("stop_run")
    if kind == BadRequest.kind or kind not in policy.retry_on or attempt >= policy.max_attempts:
        return Decision("give_up")
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (attempt - 1))
    delay = ceiling * rand() if policy.jitter else ceiling
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, min(retry_after_s, policy.retry_after_cap_s))
    return Decision("retry", delay)
