"""The gate the runner consumes: `async with gate:` waits until a request may start.

The runner owns this Protocol-like base (the loop imports no load module); `NoCap` is the
default that never waits. Rate caps and arrival shapes live in load/pacing.py."""

from __future__ import annotations

from types import TracebackType


class Gate:
    """`async with gate:` waits until a request may start; leaving it does nothing."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class NoCap(Gate):
    """No rate limit: only the concurrency cap applies."""
