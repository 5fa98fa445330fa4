"""retry.py: decisions per error kind, backoff bounds, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from lavabench.errors import ConfigError
from lavabench.runner.retry import RetryPolicy, decide
from lavabench.wire.protocol import parse_retry_after

POLICY = RetryPolicy(max_attempts=4, backoff_base_s=0.5, backoff_cap_s=4.0, retry_after_cap_s=10.0)


@pytest.mark.parametrize("kind", ["auth_failed", "insufficient_balance"])
def test_auth_and_billing_stop_the_run(kind: str) -> None:
    assert decide(kind, 1, POLICY).action == "stop_run"


def test_bad_request_is_never_retried() -> None:
    assert decide("bad_request", 1, POLICY).action == "give_up"


@pytest.mark.parametrize("kind", ["rate_limited", "unavailable", "stream_broken"])
def test_transient_errors_retry_until_max_attempts(kind: str) -> None:
    assert [decide(kind, n, POLICY).action for n in (1, 2, 3, 4)] == ["retry"] * 3 + ["give_up"]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    no_jitter = RetryPolicy(backoff_base_s=0.5, backoff_cap_s=4.0, jitter=False)
    assert [decide("unavailable", n, no_jitter).delay_s for n in (1, 2, 3, 4, 5)][:3] == [
        0.5,
        1.0,
        2.0,
    ]
    assert (
        decide(
            "unavailable", 3, RetryPolicy(max_attempts=9, backoff_cap_s=4.0, jitter=False)
        ).delay_s
        == 2.0
    )
    assert (
        decide(
            "unavailable", 8, RetryPolicy(max_attempts=9, backoff_cap_s=4.0, jitter=False)
        ).delay_s
        == 4.0
    )
    assert (
        decide("unavailable", 2, POLICY, rand=lambda: 0.25).delay_s == 0.25
    )  # full jitter: 0.25 x 1.0


def test_retry_after_is_honoured_and_capped() -> None:
    assert decide("rate_limited", 1, POLICY, retry_after_s=3.0, rand=lambda: 0.0).delay_s == 3.0
    assert decide("rate_limited", 1, POLICY, retry_after_s=3600, rand=lambda: 0.0).delay_s == 10.0


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_policy_refuses_to_retry_fatal_kinds() -> None:
    with pytest.raises(ConfigError, match="retry_on"):
        RetryPolicy(retry_on=["auth_failed"])
