"""A run's side of the account-wide limits: the limiter connection, and what the runner uses.

The limiter itself (one schedule and one budget for every job of a sweep) is
lavabench.load.limiter. Here: `SharedLimits` (one job's TCP connection to it), the runner's gate
and budget over it, and `run_limits`, which combines them with the run's own
`runner.rate` / `runner.budget_usd` and says what each row records of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from typing import Any

import orjson

from lavabench.load.budget import request_upper_pico, settled_cost_pico
from lavabench.load.limiter import LimiterError
from lavabench.records.schema import Record
from lavabench.runner.gate import Gate
from lavabench.runner.plan import Job


class SharedLimits:
    """A job's connection to the limiter; every call is one round trip on its event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reading = asyncio.ensure_future(self._read())
        self.rate_per_s: float | None = None
        self.budget_usd: float | None = None
        self.address = ""

    @classmethod
    async def connect(cls, address: str) -> SharedLimits:
        host, _, port = address.rpartition(":")
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except (OSError, ValueError) as exc:
            raise LimiterError(
                f"the sweep's shared limiter at {address} cannot be reached ({exc}); it runs "
                "in the process that launched the sweep (limits.host must be reachable from "
                "this job's machine)"
            ) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limits = cls(reader, writer)
        limits.address = address
        hello = await limits._call({"op": "hello"})
        limits.rate_per_s = hello.get("rate_per_s")
        budget = hello.get("budget_pico")
        limits.budget_usd = None if budget is None else budget / 10**12
        return limits

    async def permit(self) -> None:
        """Wait for this request's slot in the account-wide schedule."""
        await self._call({"op": "permit"})

    async def reserve(self, key: str, pico: int) -> bool:
        return bool((await self._call({"op": "reserve", "key": key, "pico": pico}))["ok"])

    def settle(self, key: str, spent_pico: int) -> None:
        self._send({"op": "settle", "key": key, "spent": spent_pico})

    def release(self, key: str) -> None:
        self._send({"op": "release", "key": key})

    async def aclose(self) -> None:
        self._reading.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    def _send(self, message: dict[str, Any]) -> None:
        if self._writer.is_closing():
            raise LimiterError(f"the shared limiter at {self.address} closed the connection")
        self._writer.write(orjson.dumps(message) + b"\n")

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answer
        self._send({**message, "id": rid})
        return await answer

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                msg = orjson.loads(line)
                waiter = self._waiting.pop(msg.get("id"), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(msg)
        except (ConnectionError, orjson.JSONDecodeError):
            pass
        gone = LimiterError(f"the shared limiter at {self.address} stopped answering")
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(gone)
        self._waiting.clear()


class SharedRateGate(Gate):
    """`async with gate:` waits for the account-wide slot (pacing's gate interface)."""

    def __init__(self, limits: SharedLimits) -> None:
        self._limits = limits
        self.rate_per_s = limits.rate_per_s

    async def __aenter__(self) -> None:
        await self._limits.permit()


class SharedBudget:
    """The runner's Budget interface over the shared limiter (reserve is a round trip)."""

    def __init__(self, limits: SharedLimits, max_tokens: int) -> None:
        self._limits = limits
        self._max_tokens = max_tokens
        self._held: dict[str, int] = {}

    async def reserve(self, job: Job) -> bool:
        upper = request_upper_pico(job, self._max_tokens)
        if not await self._limits.reserve(job.job_id, upper):
            return False
        self._held[job.job_id] = upper
        return True

    def settle(self, job: Job, record: Record) -> None:
        held = self._held.pop(job.job_id, 0)
        self._limits.settle(job.job_id, settled_cost_pico(record, held))

    def settle_attempt(self, job: Job, spent_pico: int) -> None:
        """A billed failed attempt before its retry (budget.SpendGuard.settle_attempt)."""
        self._held.pop(job.job_id, None)
        self._limits.settle(job.job_id, spent_pico)

    def release(self, job: Job) -> None:
        self._held.pop(job.job_id, None)
        self._limits.release(job.job_id)


class StampLimits:
    """The sink that writes each row with the limits it was sent under (records v3), and
    the client worker that sent it."""

    def __init__(self, sink: Any, limits: dict[str, float | int | None]) -> None:
        self._sink = sink
        self._limits = limits

    def write(self, record: Record) -> None:
        for name, value in self._limits.items():
            setattr(record, name, value)
        self._sink.write(record)
