"""Account-wide limits shared by every job of a sweep: one request rate, one budget.

Lava's rate limit and the wallet belong to the account, not to a job: six jobs each told
"10 requests/s" send 60. So a sweep starts one small limiter (a TCP server in a thread of
the process that launched the sweep) and every job consults it before each request:

- **rate**: a `permit` is answered at the next free slot of one global schedule, slots
  1/rate apart (no burst), first come first served. The aggregate rate of all jobs together
  is the limit when they ask faster, whatever the number of jobs running at that moment.
- **budget**: `reserve` holds a request's worst-case cost before it is sent and `settle`
  replaces it with the real cost after, exactly as `spend.SpendGuard` does for one run,
  but over all jobs. A reservation that does not fit waits while other requests are still
  reserved (their settlement may free room) and is refused only when nothing is in flight.
  A job that disconnects leaves its reservations counted as spent (they may be billed).

Wire: one TCP connection per job, newline-delimited JSON both ways, requests carry an `id`
that the answer repeats. Loopback by default; `limits.host=0.0.0.0` serves jobs on other
machines (a Ray or Slurm cluster). The cost per request is one loopback round trip
(~0.1 ms), only for runs that set a shared limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from lavabench.errors import LavabenchError

LIMITER_FILE = "limiter.json"  # in a sweep directory: {"address": "host:port"} for its jobs


class LimiterError(LavabenchError):
    """The shared limiter cannot be reached or stopped answering."""


@dataclass
class _Waiter:
    key: str
    pico: int
    answer: asyncio.Future[bool]


@dataclass
class LimiterStats:
    """What the limiter saw: for the sweep manifest (achieved aggregate rate, spend)."""

    permits: int = 0
    first_permit_s: float | None = None  # loop clock (monotonic) of the first and last grant
    last_permit_s: float | None = None
    spent_pico: int = 0
    reserved_pico: int = 0
    refused: int = 0
    clients: int = 0

    def as_dict(self, rate_per_s: float | None, budget_pico: int | None) -> dict[str, Any]:
        span = (
            (self.last_permit_s or 0.0) - (self.first_permit_s or 0.0) if self.permits > 1 else None
        )
        return {
            "rate_per_s": rate_per_s,
            "budget_usd": None if budget_pico is None else budget_pico / 10**12,
            "permits": self.permits,
            "achieved_rate_per_s": (self.permits - 1) / span if span else None,
            "spent_usd": self.spent_pico / 10**12,
            "refused_reservations": self.refused,
            "clients": self.clients,
        }


@dataclass
class LimiterState:
    """The limiter's bookkeeping, separate from its sockets so it can be tested alone."""

    rate_per_s: float | None
    budget_pico: int | None
    next_slot_s: float = 0.0
    held: dict[str, int] = field(default_factory=dict)
    waiters: deque[_Waiter] = field(default_factory=deque)
    stats: LimiterStats = field(default_factory=LimiterStats)

    def slot(self, now_s: float) -> float:
        """When the next permit may go: the global schedule, one slot every 1/rate s."""
        if self.rate_per_s is None:
            return now_s
        due = max(now_s, self.next_slot_s)
        self.next_slot_s = due + 1.0 / self.rate_per_s
        return due

    def granted(self, at_s: float) -> None:
        self.stats.permits += 1
        if self.stats.first_permit_s is None:
            self.stats.first_permit_s = at_s
        self.stats.last_permit_s = at_s

    def try_reserve(self, key: str, pico: int) -> bool | None:
        """True: held. False: can never fit (nothing in flight). None: wait for a settle."""
        if self.budget_pico is None:
            return True
        if self.stats.spent_pico + self.stats.reserved_pico + pico <= self.budget_pico:
            self.held[key] = self.held.get(key, 0) + pico
            self.stats.reserved_pico += pico
            return True
        return None if self.stats.reserved_pico > 0 else False

    def settle(self, key: str, spent_pico: int) -> None:
        self.stats.reserved_pico -= self.held.pop(key, 0)
        self.stats.spent_pico += spent_pico
        self._wake()

    def release(self, key: str) -> None:
        self.stats.reserved_pico -= self.held.pop(key, 0)
        self._wake()

    def abandon(self, prefix: str) -> None:
        """A client went away: what it still held may be billed, so count it as spent."""
        for key in [k for k in self.held if k.startswith(prefix)]:
            pico = self.held.pop(key)
            self.stats.reserved_pico -= pico
            self.stats.spent_pico += pico
        self._wake()

    def wait(self, key: str, pico: int, answer: asyncio.Future[bool]) -> None:
        self.waiters.append(_Waiter(key, pico, answer))

    def _wake(self) -> None:
        """Answer waiting reservations in order, as far as the budget now allows."""
        while self.waiters:
            waiter = self.waiters[0]
            if waiter.answer.done():
                self.waiters.popleft()
                continue
            fits = self.try_reserve(waiter.key, waiter.pico)
            if fits is None:
                return
            self.waiters.popleft()
            self.stats.refused += not fits
            waiter.answer.set_result(fits)


class LimiterServer:
    """The limiter's TCP server, on its own event loop in a daemon thread."""

    def __init__(self, state: LimiterState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._clients = itertools.count(1)
        self.address = ""  # host:port, once started
        self.final_stats: dict[str, Any] | None = None  # once stopped

    def start(self) -> str:
        """Start serving; returns `host:port` for the jobs (a reachable name if host is 0.0.0.0)."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self._host, self._port), self._loop
        )
        self._server = future.result(timeout=10)
        port = self._server.sockets[0].getsockname()[1]
        host = socket.gethostname() if self._host in ("0.0.0.0", "") else self._host
        self.address = f"{host}:{port}"
        return self.address

    def stop(self) -> dict[str, Any]:
        """Stop serving; returns the limiter's statistics."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self.final_stats = self.state.stats.as_dict(self.state.rate_per_s, self.state.budget_pico)
        return self.final_stats

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prefix = f"c{next(self._clients)}/"
        self.state.stats.clients += 1
        loop = asyncio.get_running_loop()

        def answer(message: dict[str, Any]) -> None:
            if not writer.is_closing():
                writer.write(orjson.dumps(message) + b"\n")

        try:
            while line := await reader.readline():
                msg = orjson.loads(line)
                op, rid = msg.get("op"), msg.get("id")
                if op == "hello":
                    answer({"id": rid, "rate_per_s": self.state.rate_per_s,
                            "budget_pico": self.state.budget_pico})  # fmt: skip
                elif op == "permit":
                    due = self.state.slot(loop.time())
                    loop.call_at(due, self._grant, answer, rid, due)
                elif op == "reserve":
                    self._reserve(answer, rid, prefix + str(msg["key"]), int(msg["pico"]))
                elif op == "settle":
                    self.state.settle(prefix + str(msg["key"]), int(msg["spent"]))
                elif op == "release":
                    self.state.release(prefix + str(msg["key"]))
        except (ConnectionError, orjson.JSONDecodeError):
            pass
        finally:
            self.state.abandon(prefix)
            writer.close()

    def _grant(self, answer: Any, rid: Any, due: float) -> None:
        self.state.granted(due)
        answer({"id": rid})

    def _reserve(self, answer: Any, rid: Any, key: str, pico: int) -> None:
        fits = self.state.try_reserve(key, pico)
        if fits is not None:
            self.state.stats.refused += not fits
            answer({"id": rid, "ok": fits})
            return
        waiting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiting.add_done_callback(lambda f: answer({"id": rid, "ok": f.result()}))
        self.state.wait(key, pico, waiting)


@contextlib.contextmanager
def serve_limits(
    rate_per_s: float | None, budget_usd: float | None, *, host: str = "127.0.0.1"
) -> Iterator[LimiterServer]:
    """A running limiter for the duration of the block (`.address`; `.final_stats` after)."""
    budget_pico = None if budget_usd is None else round(budget_usd * 10**12)
    server = LimiterServer(LimiterState(rate_per_s, budget_pico), host=host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
