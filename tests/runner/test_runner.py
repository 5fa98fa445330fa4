"""runner.py with fakes: one row per job, retries counted, fatal errors stop the run."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pytest

from lavabench.catalog import Model, Price
from lavabench.datasets.prompt import Message, Prompt
from lavabench.errors import AuthFailed, GatewayError, RateLimited, Unavailable
from lavabench.records.schema import Record
from lavabench.runner.gate import NoCap
from lavabench.runner.loop import Runner, RunSettings
from lavabench.runner.plan import plan_jobs
from lavabench.runner.retry import RetryPolicy
from lavabench.wire.client import Attempt, WireRequest
from lavabench.wire.protocol import StreamResult

MODELS = [Model(name=n, id=f"accounts/fireworks/models/{n}", price=Price(Decimal("1"), Decimal("2")),
                context_length=8) for n in ("a", "b")]  # fmt: skip
PROMPTS = [Prompt("ds", f"i{i}", (Message("user", f"q{i}"),), "1", f"h{i}") for i in range(5)]


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Record] = []

    def write(self, record: Record) -> None:
        self.rows.append(record)


class ScriptedClient:
    """Fails the first `failures[url-key]` attempts of a model with the given errors."""

    def __init__(self, script: dict[str, list[GatewayError]], delay_s: float = 0.0) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = 0
        self.delay_s = delay_s

    async def send(self, request: WireRequest) -> Attempt:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        now = 1_000 * self.calls
        attempt = Attempt(
            send_ns=now, started_at=datetime.now(UTC), headers_ns=now + 10, end_ns=now + 100
        )
        pending = self.script.get(request.url)
        if pending:
            attempt.error = pending.pop(0)
            attempt.http_status = attempt.error.http_status
            return attempt
        attempt.http_status = 200
        attempt.result = StreamResult(response_id="x", answer_parts=["1"], token_times_ns=[now + 20, now + 50],
                                      content_chunks=2, usage={"prompt_tokens": 10, "completion_tokens": 2},
                                      done=True)  # fmt: skip
        return attempt


def _run(client, jobs, *, retry=None, concurrency=3):
    sink, sleeps = ListSink(), []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    settings = RunSettings(run_id="r", endpoint="sim", concurrency=concurrency, max_tokens=16,
                           stream=True, keep_text=True, retry=retry or RetryPolicy())  # fmt: skip
    runner = Runner(settings, client=client, make_request=lambda j: WireRequest(j.model.name, {}, b"", True),
                    sink=sink, rate=NoCap(), sleep=fake_sleep)  # fmt: skip
    outcome = asyncio.run(runner.run(jobs))
    return outcome, sink.rows, sleeps


def test_one_row_per_job_with_stable_ids_and_interleaved_models() -> None:
    jobs = plan_jobs(MODELS, PROMPTS, repeats=2)
    assert [j.model.name for j in jobs[:4]] == ["a", "b", "a", "b"]
    outcome, rows, _ = _run(ScriptedClient({}), jobs)
    assert outcome.written == len(rows) == 20 and outcome.errors == 0
    assert sorted(r.job_id for r in rows) == sorted(j.job_id for j in jobs)
    assert len({r.job_id for r in rows}) == 20
    assert rows[0].cost_pico_usd == 10 * 10**6 + 2 * 2 * 10**6


def test_retries_are_counted_and_honour_retry_after() -> None:
    script = {
        "a": [
            RateLimited("429", http_status=429, retry_after_s=5.0),
            Unavailable("503", http_status=503),
        ]
    }
    _outcome, rows, sleeps = _run(
        ScriptedClient(script), plan_jobs(MODELS[:1], PROMPTS[:1]), concurrency=1
    )
    (row,) = rows
    assert row.status == "ok" and row.attempts == 3
    assert row.retry_reasons == ["rate_limited:429", "unavailable:503"]
    assert sleeps[0] >= 5.0 and row.backoff_s == sum(sleeps)
    # timings come from the final attempt only (the fake client's third call starts at 3000 ns)
    assert row.send_ns - row.first_send_ns == 3000 - 1000


def test_retries_exhausted_record_an_error_row() -> None:
    script = {"a": [Unavailable("down", http_status=503)] * 10}
    _outcome, rows, _ = _run(ScriptedClient(script), plan_jobs(MODELS[:1], PROMPTS[:1]),
                            retry=RetryPolicy(max_attempts=3))  # fmt: skip
    (row,) = rows
    assert row.status == "error" and row.error_type == "unavailable" and row.attempts == 3
    assert row.cost_pico_usd is None and row.e2e_s is None


def test_auth_failure_stops_the_run_and_keeps_finished_rows() -> None:
    script = {"b": [AuthFailed("401 bad key", http_status=401)] * 100}
    client = ScriptedClient(script, delay_s=0.001)
    jobs = plan_jobs(MODELS, PROMPTS)
    outcome, rows, _ = _run(client, jobs, concurrency=1)
    assert outcome.fatal is not None and outcome.fatal.kind == "auth_failed"
    assert client.calls == 2  # a's first item, then b's: never retried, nothing more sent
    assert [r.status for r in rows] == ["ok", "error"]
    assert outcome.not_started == len(jobs) - 2


def test_a_bug_in_a_job_is_raised_not_swallowed() -> None:
    class Broken(ScriptedClient):
        async def send(self, request):
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        _run(Broken({}), plan_jobs(MODELS, PROMPTS))


def test_rate_cap_spaces_starts() -> None:
    import time

    from lavabench.load.pacing import RateCap

    async def go() -> float:
        cap = RateCap(100.0)
        start = time.perf_counter()
        for _ in range(31):
            async with cap:
                pass
        return time.perf_counter() - start

    elapsed = asyncio.run(go())
    # 31 starts at <= 100/s need >= 0.25 s (the first window's 5 may start at once)
    assert 0.25 <= elapsed < 1.0, elapsed


def test_a_store_failure_stops_the_run_and_is_raised() -> None:
    from lavabench.errors import StoreError

    class FullSink(ListSink):
        def write(self, record: Record) -> None:
            if len(self.rows) >= 3:
                raise StoreError("disk full")
            super().write(record)

    sink = FullSink()
    settings = RunSettings(run_id="r", endpoint="sim", concurrency=1, max_tokens=16, stream=True,
                           keep_text=True, retry=RetryPolicy())  # fmt: skip
    runner = Runner(settings, client=ScriptedClient({}), sink=sink, rate=NoCap(),
                    make_request=lambda j: WireRequest(j.model.name, {}, b"", True))  # fmt: skip
    with pytest.raises(StoreError, match="disk full"):
        asyncio.run(runner.run(plan_jobs(MODELS, PROMPTS)))
    assert len(sink.rows) == 3


def test_blocking_graders_run_off_the_event_loop() -> None:
    import time as _time

    from lavabench.grading.base import Grade
    from lavabench.runner.grade import grade_hook as grade_hook

    def slow(text, reference, options):
        _time.sleep(0.3)
        return Grade(True, 1.0, text)

    slow.blocking = True  # type: ignore[attr-defined]

    class Spec:
        grader = "slow"
        grader_options: ClassVar[dict[str, str]] = {}

    grade = grade_hook(slow, Spec())  # type: ignore[arg-type]
    jobs = plan_jobs(MODELS, PROMPTS[:1])
    records = [Record(job_id=j.job_id) for j in jobs]

    async def go() -> tuple[float, float]:
        ticks: list[float] = []

        async def ticker() -> None:  # the loop must keep running while grading
            for _ in range(5):
                ticks.append(_time.perf_counter())
                await asyncio.sleep(0.05)

        start = _time.perf_counter()
        await asyncio.gather(
            ticker(), *(grade(j, r, "1") for j, r in zip(jobs, records, strict=True))
        )
        return _time.perf_counter() - start, max(b - a for a, b in itertools.pairwise(ticks))

    elapsed, worst_gap = asyncio.run(go())
    assert elapsed < 0.55, elapsed  # two 0.3 s grades overlapped
    assert worst_gap < 0.15, worst_gap  # the loop was never blocked by a grade
    assert all(r.correct for r in records)


class DictCache:
    def __init__(self) -> None:
        self.entries: dict[bytes, dict] = {}

    def get(self, request: WireRequest) -> dict | None:
        return self.entries.get(request.url.encode())

    def put(self, request: WireRequest, entry: dict) -> None:
        self.entries[request.url.encode()] = entry


def test_a_cached_answer_carries_its_original_cost_marked_cached() -> None:
    # Before: a reused answer was priced at null (read as $0), so "cheapest" depended on
    # which answers happened to be in the cache.
    cache = DictCache()
    settings = RunSettings(run_id="r", endpoint="sim", concurrency=1, max_tokens=16,
                           stream=True, keep_text=True, retry=RetryPolicy())  # fmt: skip
    rows = []
    for _ in range(2):
        sink = ListSink()
        runner = Runner(settings, client=ScriptedClient({}), sink=sink, rate=NoCap(),
                        make_request=lambda j: WireRequest(j.job_id, {}, b"", True),
                        cache=cache)  # fmt: skip
        asyncio.run(runner.run(plan_jobs(MODELS[:1], PROMPTS[:1])))
        rows += sink.rows
    first, reused = rows
    assert (first.cost_source, reused.cost_source) == ("server_usage", "cached")
    assert reused.response_cached and reused.cost_pico_usd == first.cost_pico_usd > 0
    assert reused.retry_cost_pico_usd is None and reused.usage_source == "server"


class TimedClient(ScriptedClient):
    """Records (job id, send, end) on a real clock; warm-ups are slow."""

    def __init__(self) -> None:
        super().__init__({})
        self.spans: list[tuple[str, float, float]] = []

    async def send(self, request: WireRequest) -> Attempt:
        import time

        start = time.perf_counter()
        await asyncio.sleep(0.05 if request.url.startswith("warmup/") else 0.005)
        attempt = await super().send(request)
        self.spans.append((request.url, start, time.perf_counter()))
        return attempt


def test_warm_ups_are_a_barrier_per_model() -> None:
    client = TimedClient()
    settings = RunSettings(run_id="r", endpoint="sim", concurrency=8, max_tokens=16,
                           stream=True, keep_text=True, retry=RetryPolicy())  # fmt: skip
    runner = Runner(settings, client=client, sink=ListSink(), rate=NoCap(),
                    make_request=lambda j: WireRequest(j.job_id, {}, b"", True))  # fmt: skip
    asyncio.run(runner.run(plan_jobs(MODELS, PROMPTS, warmup_per_model=2)))
    for model in ("a", "b"):
        warm_end = max(e for j, _s, e in client.spans if j.startswith(f"warmup/{model}/"))
        first_measured = min(s for j, s, _e in client.spans if j.startswith(f"{model}/"))
        assert first_measured >= warm_end  # before: measured requests overlapped warm-ups


def test_a_request_built_later_waits_and_an_interrupt_ends_the_wait() -> None:
    """A conversation's factory returns an awaitable; the dispatcher waits for it, and a run
    that stops while it waits does not hang (the turn it waits for will never answer)."""
    jobs = plan_jobs(MODELS[:1], PROMPTS[:3])
    release = asyncio.Event()
    sink = ListSink()

    async def later(job):  # type: ignore[no-untyped-def]
        if job.prompt.item_id == "i1":
            await release.wait()  # never set: only the interrupt can end this
        return WireRequest(job.model.name, {}, b"", True)

    settings = RunSettings(run_id="r", endpoint="sim", concurrency=2, max_tokens=16,
                           stream=True, keep_text=True, retry=RetryPolicy())  # fmt: skip
    runner = Runner(settings, client=ScriptedClient({}), make_request=later, sink=sink,
                    rate=NoCap())  # fmt: skip

    async def go():  # type: ignore[no-untyped-def]
        task = asyncio.create_task(runner.run(jobs))
        while not sink.rows:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        runner.interrupt()
        return await asyncio.wait_for(task, timeout=5)

    outcome = asyncio.run(go())
    assert [r.item_id for r in sink.rows] == ["i0"] and outcome.not_started == 2


class CutClient:
    """Every attempt: a 200 whose stream is cut after two chunks (may have been billed)."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, request: WireRequest) -> Attempt:
        from lavabench.errors import StreamBroken

        self.calls += 1
        attempt = Attempt(send_ns=1, started_at=datetime.now(UTC), headers_ns=2, end_ns=9,
                          http_status=200, error=StreamBroken("cut", http_status=200))  # fmt: skip
        attempt.result = StreamResult(token_times_ns=[3, 4], content_chunks=2)
        return attempt


def test_a_billed_failed_attempt_is_settled_and_its_retry_reserves_again() -> None:
    from lavabench.load.budget import SpendGuard, request_upper_pico

    job = plan_jobs(MODELS[:1], PROMPTS[:1])[0]
    billed = (job.prompt.estimated_tokens() * 1 + 2 * 2) * 10**6  # $1 in, $2 out per 1M
    # room for the first attempt, and for one retry once the first has cost `billed`
    guard = SpendGuard(budget_pico=request_upper_pico(job, 16) + billed, max_tokens=16)
    settings = RunSettings(run_id="r", endpoint="sim", concurrency=1, max_tokens=16,
                           stream=True, keep_text=True, retry=RetryPolicy())  # fmt: skip
    sink, client = ListSink(), CutClient()

    async def no_sleep(_s: float) -> None:
        return None

    runner = Runner(settings, client=client, sink=sink, rate=NoCap(), budget=guard,
                    make_request=lambda j: WireRequest(j.job_id, {}, b"", True),
                    sleep=no_sleep)  # fmt: skip
    outcome = asyncio.run(runner.run([job]))
    (row,) = sink.rows
    assert row.cost_source == "estimate" and row.cost_pico_usd == billed
    assert client.calls == 2 and row.retry_cost_pico_usd == billed  # 1st attempt: a retry
    assert outcome.budget_reached and "not retried" in row.error_message
    # before: only the final attempt (or nothing) reached the budget
    assert guard.spent_pico == 2 * billed and guard.reserved_pico == 0
