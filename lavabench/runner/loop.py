"""The loop: job -> pacing -> client (+retry) -> Record -> sink.

The runner owns the small Protocols it consumes (Client, Sink, Observer), so it imports no
concrete client, store, pandas or matplotlib; `commands/run/execute.py` wires the real parts in and tests
pass fakes. One dispatcher task hands jobs out as concurrency slots and the rate cap allow;
each job runs its attempts in its own task and writes exactly one Record when it ends.
Auth and billing errors stop the run at once: nothing new is sent, requests in flight are
cancelled (they get no row, so a resume would redo them) and every finished row is kept.
A 403 that names the model (`model_unavailable`) pauses only that model, like the breaker.
Warm-up requests are a barrier per model: its measured requests start after they end.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lavabench.errors import FATAL_KINDS, GatewayError, ModelUnavailable
from lavabench.records.schema import Record
from lavabench.redaction import redact_text
from lavabench.runner.gate import Gate
from lavabench.runner.measure import (
    DispatchTimes,
    attempt_usage,
    build_record,
    cache_entry,
    record_from_cache,
)
from lavabench.runner.plan import Job
from lavabench.runner.retry import RetryPolicy, decide
from lavabench.wire.client import Attempt, WireRequest


class Client(Protocol):
    async def send(self, request: WireRequest) -> Attempt: ...


class Sink(Protocol):
    def write(self, record: Record) -> None: ...


class Observer(Protocol):
    def on_record(self, record: Record) -> None: ...


_SWITCH_INTERVAL_S = 0.0005  # see Runner.run
_GC_YOUNG_THRESHOLD = 10_000  # see Runner.run


class InFlightProbe(Protocol):
    """Told when a job's task starts and ends (health.InFlight: time-weighted in-flight)."""

    def started(self) -> None: ...

    def finished(self) -> None: ...


class Budget(Protocol):
    """Spending guard: room is reserved for a job's worst case before it is sent.

    `reserve` may be a coroutine: a sweep's shared budget asks the sweep's limiter."""

    def reserve(self, job: Job) -> bool | Awaitable[bool]: ...

    def settle(self, job: Job, record: Record) -> None: ...

    def settle_attempt(self, job: Job, spent_pico: int) -> None: ...


class ResponseCache(Protocol):
    """Stored answers for identical requests (quality runs only)."""

    def get(self, request: WireRequest) -> dict[str, Any] | None: ...

    def put(self, request: WireRequest, entry: dict[str, Any]) -> None: ...


# May return an awaitable: a request that can only be built later (a conversation's turn k
# once turn k-1 has answered); the dispatcher waits for it, or for the run to stop.
RequestFactory = Callable[[Job], WireRequest | Awaitable[WireRequest]]
# Fills the record's grade from the answer text (which is graded even when not stored).
# Async so a slow grader (code execution) can run off the event loop while tokens arrive.
Grader = Callable[[Job, Record, str], Awaitable[None]]


@dataclass(frozen=True)
class RunSettings:
    run_id: str
    endpoint: str
    concurrency: int
    max_tokens: int
    stream: bool
    keep_text: bool
    retry: RetryPolicy
    circuit_breaker_failures: int = 0  # 0 = off
    secrets: tuple[str, ...] = ()  # redacted from every message we record; never stored


@dataclass
class RunOutcome:
    written: int = 0
    errors: int = 0
    cached: int = 0
    not_started: int = 0
    cancelled_in_flight: int = 0
    elapsed_s: float = 0.0
    # The run's clock origin (perf_counter_ns, i.e. CLOCK_MONOTONIC on Linux): every `*_ns`
    # stamp is relative to it, so rows of runs on one machine (a sweep's parallel jobs, a
    # run's workers) share one timeline once this is added back.
    clock_origin_ns: int = 0
    fatal: GatewayError | None = None
    interrupted: bool = False
    budget_reached: bool = False
    circuit_open: dict[str, str] = field(default_factory=dict)  # model -> why
    skipped: dict[str, int] = field(default_factory=dict)  # model -> jobs not sent
    health: dict[str, Any] | None = None  # run_command fills it: samplers' summary + verdict
    load_sweep: dict[str, Any] | None = None  # load=sweep: steps, stop reason, saturation
    load_sweep_text: str = ""  # ... and its table, as printed at the end of the run
    workers: list[dict[str, Any]] | None = None  # runner.workers > 1: each worker's summary

    @property
    def stop_reason(self) -> str | None:
        if self.interrupted:
            return "interrupted"
        if self.fatal is not None:
            return f"{self.fatal.kind}: {self.fatal.message}"
        return "budget reached" if self.budget_reached else None


class Runner:
    def __init__(
        self,
        settings: RunSettings,
        *,
        client: Client,
        make_request: RequestFactory,
        sink: Sink,
        rate: Gate,
        grade: Grader | None = None,
        observer: Observer | None = None,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
        arrivals_s: list[float] | None = None,
        in_flight: InFlightProbe | None = None,
        start_at_ns: int | None = None,
    ) -> None:
        """`arrivals_s`: open-loop intended send offsets (pacing.arrival_offsets_s), one per
        job; None = closed loop. `clock_ns`/`sleep` are injectable so that dispatch lateness
        can be tested under a virtual clock; the client must stamp with the same clock.
        `start_at_ns`: the run's origin chosen outside (runner.workers: one origin for every
        worker); the first `run` waits for it and open-loop offsets count from it."""
        if settings.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._s = settings
        self._client = client
        self._make_request = make_request
        self._sink = sink
        self._rate = rate
        self._grade = grade
        self._observer = observer
        self._budget = budget
        self._cache = cache
        self._sleep = sleep
        self._clock = clock_ns
        self._arrivals = arrivals_s
        self._in_flight_probe = in_flight
        self._failures_in_a_row: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        # model -> its warm-up requests in flight. A model's measured requests wait for them
        # (a barrier), so none of them pays for opening a connection the warm-ups are there
        # to open; other models' requests are not held back by it.
        self._warming: dict[str, set[asyncio.Task[None]]] = {}
        self._crash: BaseException | None = None
        self._start_at_ns = start_at_ns
        self.origin_ns = clock_ns() if start_at_ns is None else start_at_ns
        self.outcome = RunOutcome(clock_origin_ns=self.origin_ns)

    async def run(
        self,
        jobs: Iterable[Job],
        *,
        concurrency: int | None = None,
        arrivals_s: list[float] | None = None,
    ) -> RunOutcome:
        """Run every job (or until a fatal error); returns counts and the fatal error if any.

        May be called again with more jobs (a load sweep's steps): `concurrency` and
        `arrivals_s` then override the run's own for this call; stamps share one origin and
        the outcome keeps counting."""
        # Objects made before the run (config, dataset, imports) never become garbage: freeze
        # them out of the collector so a full collection cannot pause the loop for tens of ms
        # while tokens arrive (measured: a 50 ms stall at c=32 in a large process).
        gc.collect()
        gc.freeze()
        # ... and collect the young generation every 10,000 net allocations, not 700: with
        # 256 requests in flight their live objects were traversed (and promoted) again and
        # again; the collector took 18-27% of the client's CPU at c=256 (gc.callbacks, an
        # in-process run against bench/sse_server.py), ~10% at 10,000. 50,000 saved a little
        # more but its longer pauses showed in TTFT error at c=64 (p99 2.4-2.5 ms vs
        # 1.1-1.7 ms at 10,000, two rounds each; 2.2-2.8 ms at 700).
        gc_threshold = gc.get_threshold()
        gc.set_threshold(max(gc_threshold[0], _GC_YOUNG_THRESHOLD), *gc_threshold[1:])
        # The Parquet writer thread converts rows while tokens arrive; when it holds the GIL
        # the loop thread waits up to the switch interval (5 ms by default) to stamp them.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
        start = time.perf_counter()
        slots = asyncio.Semaphore(concurrency or self._s.concurrency)
        # a Sequence (runner/plan.JobPlan) is read as it goes: listing it would build every
        # Job of a 100k-item plan up front (bench_memory)
        pending = jobs if isinstance(jobs, Sequence) else list(jobs)
        arrivals = self._arrivals if arrivals_s is None else arrivals_s
        if arrivals is not None and len(arrivals) < len(pending):
            raise ValueError("arrivals_s: one intended send time per job is needed")
        clock = self._clock
        issued = 0
        try:
            start_ns = clock()
            if self._start_at_ns is not None:  # a worker: every worker starts at one origin
                if self._start_at_ns > start_ns:
                    await self._sleep((self._start_at_ns - start_ns) / 1e9)
                start_ns, self._start_at_ns = self._start_at_ns, None
            for i, job in enumerate(pending):
                warming = self._warming.get(job.model.name)
                if warming and not job.is_warmup:  # the barrier: see _track
                    await asyncio.wait(set(warming))
                intended_ns: int | None = None
                if arrivals is not None:
                    intended_ns = start_ns + round(arrivals[i] * 1e9)
                    wait_ns = intended_ns - clock()
                    if wait_ns > 0:
                        await self._nap(wait_ns / 1e9)
                t0 = clock()
                await slots.acquire()
                t1 = clock()
                if self._stop.is_set():
                    break
                if job.model.name in self.outcome.circuit_open:
                    self.outcome.skipped[job.model.name] = (
                        self.outcome.skipped.get(job.model.name, 0) + 1
                    )
                    issued += 1
                    slots.release()
                    continue
                made = self._make_request(job)
                request = made if isinstance(made, WireRequest) else await self._or_stop(made)
                if request is None:
                    break
                if self._cache is not None and await self._answer_from_cache(job, request):
                    issued += 1
                    slots.release()
                    continue
                if self._budget is not None and not await self._reserve(job):
                    self.outcome.budget_reached = True
                    break
                t2 = clock()
                async with self._rate:
                    pass
                t3 = clock()
                if self._stop.is_set():
                    break
                if intended_ns is None:  # closed loop: due once a slot and the rate cap allow
                    dispatch = DispatchTimes(t3, t1 - t0, t3 - t2)
                else:  # open loop: waiting for a slot includes the queue ahead of this job
                    dispatch = DispatchTimes(intended_ns, max(0, t1 - intended_ns), t3 - t2)
                task = asyncio.create_task(self._run_job(job, request, dispatch))
                issued += 1
                self._track(task, slots)
                if job.is_warmup:
                    warm = self._warming.setdefault(job.model.name, set())
                    warm.add(task)
                    task.add_done_callback(warm.discard)
            while self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            self._cancel_in_flight()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            gc.unfreeze()
            gc.set_threshold(*gc_threshold)
            sys.setswitchinterval(switch_interval)
        if self._crash is not None:
            raise self._crash  # a bug of ours, not a gateway failure: never swallow it
        self.outcome.not_started += len(pending) - issued
        self.outcome.elapsed_s += time.perf_counter() - start
        return self.outcome

    def _track(self, task: asyncio.Task[None], slots: asyncio.Semaphore) -> None:
        self._in_flight.add(task)
        if self._in_flight_probe is not None:
            self._in_flight_probe.started()
        # one done callback, not four: each is its own call_soon handle in the loop
        task.add_done_callback(functools.partial(self._job_done, slots))

    def _job_done(self, slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._note_crash(task)
        if self._in_flight_probe is not None:
            self._in_flight_probe.finished()
        slots.release()

    async def _or_stop(self, pending: Awaitable[WireRequest]) -> WireRequest | None:
        """A request built later, or None if the run stops first (an interrupt, a fatal
        error or a crash would otherwise leave the dispatcher waiting for an answer that
        was cancelled)."""
        made = asyncio.ensure_future(pending)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({made, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not made.done():
            made.cancel()
            return None
        return made.result()

    async def _nap(self, seconds: float) -> None:
        """Sleep until the next open-loop arrival; a long wait still ends on interrupt."""
        if seconds < 0.05:
            await self._sleep(seconds)
            return
        nap = asyncio.ensure_future(self._sleep(seconds))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({nap, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            stop.cancel()

    def interrupt(self) -> None:
        """SIGINT/SIGTERM: send nothing new, cancel what is in flight; finished rows stay."""
        self.outcome.interrupted = True
        self._stop.set()
        self._cancel_in_flight()

    async def _reserve(self, job: Job) -> bool:
        """Room in the budget for this job's worst case, waiting for in-flight jobs to settle."""
        assert self._budget is not None
        while not await _resolve(self._budget.reserve(job)):
            if not self._in_flight:
                return False
            await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                return False
        return True

    async def _answer_from_cache(self, job: Job, request: WireRequest) -> bool:
        assert self._cache is not None
        entry = self._cache.get(request)
        if entry is None:
            return False
        record = record_from_cache(
            job, entry, run_id=self._s.run_id, endpoint=self._s.endpoint,
            max_tokens=self._s.max_tokens, stream=self._s.stream, keep_text=self._s.keep_text,
        )  # fmt: skip
        if self._grade is not None:
            await self._grade(job, record, entry.get("answer_text") or "")
        self.outcome.cached += 1
        self._finish(job, record, None)
        return True

    def _note_crash(self, task: asyncio.Task[None]) -> None:
        """An exception escaping a job is a bug in lavabench: stop everything and re-raise."""
        if task.cancelled() or task.exception() is None:
            return
        if self._crash is None:
            self._crash = task.exception()
            self._stop.set()
            self._cancel_in_flight()

    def _cancel_in_flight(self) -> None:
        me = asyncio.current_task()
        for task in list(self._in_flight):
            if task is not me and not task.done():
                task.cancel()
                self.outcome.cancelled_in_flight += 1

    async def _run_job(self, job: Job, request: WireRequest, dispatch: DispatchTimes) -> None:
        retry_reasons: list[str] = []
        retry_waits_s: list[float] = []
        failed_attempts_s: list[float] = []
        retry_cost_pico, retry_lava_ids, settled = 0, [], False
        first_send_ns: int | None = None
        attempt_no = 0
        while True:
            attempt_no += 1
            attempt = await self._client.send(request)
            if first_send_ns is None:
                first_send_ns = attempt.send_ns
            error = attempt.error
            if error is None:
                break
            decision = decide(
                error.kind, attempt_no, self._s.retry, retry_after_s=error.retry_after_s
            )
            if decision.action != "retry" or self._stop.is_set():
                if decision.action == "stop_run":
                    self.outcome.fatal = self.outcome.fatal or error
                break
            billed = attempt_usage(job, attempt).cost_pico  # a cut 200 may have been billed
            if billed is not None:
                if not await self._room_for_retry(job, billed):
                    settled = True  # this attempt, now final, was settled just now
                    break
                retry_cost_pico += billed
                if attempt.lava_request_id:
                    retry_lava_ids.append(attempt.lava_request_id)
            retry_reasons.append(f"{error.kind}:{attempt.http_status or '-'}")
            failed_attempts_s.append((attempt.end_ns - attempt.send_ns) / 1e9)
            retry_waits_s.append(decision.delay_s)
            await self._sleep(decision.delay_s)
            async with self._rate:
                pass
        record = build_record(
            job,
            attempt,
            run_id=self._s.run_id,
            endpoint=self._s.endpoint,
            origin_ns=self.origin_ns,
            max_tokens=self._s.max_tokens,
            stream=self._s.stream,
            attempts=attempt_no,
            first_send_ns=first_send_ns,
            retry_reasons=retry_reasons,
            retry_waits_s=retry_waits_s,
            failed_attempts_s=failed_attempts_s,
            keep_text=self._s.keep_text,
            dispatch=dispatch,
            retry_cost_pico=retry_cost_pico,
            retry_lava_ids=retry_lava_ids,
        )
        if record.error_message and self._s.secrets:
            record.error_message = redact_text(record.error_message, self._s.secrets)
        if record.status == "ok" and attempt.result is not None:
            if self._grade is not None:
                await self._grade(job, record, attempt.result.answer_text)
            if self._cache is not None:
                self._cache.put(request, cache_entry(attempt.result, record))
        if settled:
            record.error_message = (
                f"{record.error_message} (not retried: no room in the budget for another attempt)"
            )
        elif self._budget is not None:
            self._budget.settle(job, record)
        self._finish(job, record, error)

    async def _room_for_retry(self, job: Job, billed_pico: int) -> bool:
        """A failed attempt that may have been billed is settled at its cost, and its retry
        reserves again like a new request: every billed attempt counts, as it happens."""
        if self._budget is None:
            return True
        self._budget.settle_attempt(job, billed_pico)
        if await _resolve(self._budget.reserve(job)):
            return True
        self.outcome.budget_reached = True
        return False

    def _finish(self, job: Job, record: Record, error: GatewayError | None) -> None:
        """Write the row, count it, trip the model's breaker or the run's stop if due."""
        self._sink.write(record)
        self.outcome.written += 1
        self.outcome.errors += record.status != "ok"
        if self._observer is not None:
            self._observer.on_record(record)
        if error is not None and error.kind in FATAL_KINDS:
            self._stop.set()
            self._cancel_in_flight()
            return
        model = job.model.name
        if error is not None and error.kind == ModelUnavailable.kind:
            self.outcome.circuit_open.setdefault(
                model, f"paused: not available to this credential ({record.error_message})"
            )
            return
        failures = 0 if record.status == "ok" else self._failures_in_a_row.get(model, 0) + 1
        self._failures_in_a_row[model] = failures
        limit = self._s.circuit_breaker_failures
        if limit and failures >= limit and model not in self.outcome.circuit_open:
            self.outcome.circuit_open[model] = (
                f"paused after {failures} consecutive failures; last: "
                f"{record.error_type}: {record.error_message}"
            )


async def _resolve(value: bool | Awaitable[bool]) -> bool:
    return await value if inspect.isawaitable(value) else bool(value)
