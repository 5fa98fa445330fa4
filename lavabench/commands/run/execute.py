"""`lavabench run`, the sending phase: the endpoint (and the simulator), one process's event
loop with its runner, samplers and limits, or the run split over worker processes.

This is where the concrete parts of the request path are wired together: the runner owns its
Protocols and gets the real client, sink, gate, budget and grade hook from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from omegaconf import DictConfig

from lavabench.catalog import Catalog
from lavabench.commands.run.limits import run_limits
from lavabench.commands.run.prepared import Prepared
from lavabench.commands.run.setup import catalog_for_sim, prepare_share, resolve_data_path
from lavabench.commands.run.workload import WorkloadSender
from lavabench.config import LavabenchConf, plain
from lavabench.datasets.spec import DatasetSpec
from lavabench.load.budget import SpendGuard
from lavabench.load.limits import StampLimits
from lavabench.load.pacing import arrival_offsets_s
from lavabench.load.steps import StepSink, format_steps, max_concurrency, run_steps
from lavabench.records.store import RecordWriter
from lavabench.records.verdict import verdict
from lavabench.redaction import redact_logs
from lavabench.runner.cache import SqliteResponseCache
from lavabench.runner.health import HealthMonitor
from lavabench.runner.loop import Runner, RunOutcome, RunSettings
from lavabench.runner.plan import Job
from lavabench.runner.progress import RunProgress
from lavabench.runner.workers import (
    WorkerShare,
    merge_summaries,
    run_workers,
    shares,
    worker_summary,
)
from lavabench.wire.client import HttpClient, WireRequest
from lavabench.wire.endpoints import Endpoint, resolve_endpoint
from lavabench.wire.protocol import chat_body

log = logging.getLogger("lavabench")


@contextlib.contextmanager
def endpoint_for_run(
    conf: LavabenchConf, cfg: DictConfig, catalog: Catalog, spec: DatasetSpec | None
) -> Iterator[Endpoint]:
    """Resolve credentials first; for endpoint=sim also start (and later stop) the simulator,
    unless `endpoint.base_url` names one already running (one simulator for a whole sweep)."""
    settings = conf.endpoint
    if settings.kind != "sim":
        yield resolve_endpoint(settings, os.environ)
        return
    if settings.base_url:
        yield resolve_endpoint(settings, os.environ, base_url=settings.base_url)
        return
    from lavabench.sim.process import running_simulator

    sim_settings = plain(cfg.sim)
    keys = [str(resolve_data_path(p)) for p in sim_settings.get("answer_keys") or []]
    sim_settings["answer_keys"] = sorted({*keys, *([spec.path] if spec is not None else [])})
    with running_simulator(sim_settings, catalog_for_sim(catalog)) as sim:
        yield resolve_endpoint(settings, os.environ, base_url=sim.base_url)


def run_loop(
    p: Prepared,
    run_id: str,
    endpoint: Endpoint,
    writer: RecordWriter,
    guard: SpendGuard | None,
    secrets: list[str],
    limiter_address: str | None = None,
    share: WorkerShare | None = None,
    start_at_ns: int | None = None,
) -> RunOutcome:
    """The run's event loop: one process, or (with `share`) one worker of several."""
    conf = p.conf
    settings = RunSettings(
        run_id=run_id,
        endpoint=endpoint.kind,
        concurrency=conf.runner.concurrency,
        max_tokens=conf.runner.max_tokens,
        stream=conf.runner.stream,
        keep_text=conf.records.response_text,
        retry=conf.runner.retry,
        circuit_breaker_failures=conf.runner.circuit_breaker_failures,
        secrets=tuple(secrets),
    )
    cache = (
        SqliteResponseCache(resolve_data_path(conf.cache.path), namespace=endpoint.url)
        if conf.cache.enabled
        else None
    )

    r = conf.runner
    arrivals = (
        run_arrivals(p)
        if share is None
        else None
        if share.arrivals_s is None
        else list(share.arrivals_s)
    )
    max_in_flight = max_concurrency(r.load_sweep, r.concurrency)
    monitor = HealthMonitor(conf.health)

    async def go() -> RunOutcome:
        gate, budget, shared, stamp = await run_limits(
            conf, limiter_address, guard, p.judge, uses_rate_cap=arrivals is None
        )
        stamp["client_worker"] = None if share is None else share.index
        # a load sweep's highest step needs its connections: a smaller pool would queue
        # requests inside the client and show the wait as TTFT
        client = HttpClient(max_connections=max_in_flight, timeouts=conf.runner.timeouts)
        loop = asyncio.get_running_loop()
        try:
            # workers share one terminal: only a single process draws a progress bar
            with RunProgress(len(p.jobs), enabled=False if share else None) as progress:
                sink: Any = StampLimits(writer, stamp)
                runner_client: Any = client
                make_request: Any = request_factory(conf, endpoint, run_id)
                grade = p.grade
                if p.workload is not None:  # built at send time, from calibrated lengths
                    sender = WorkloadSender(p.workload, conf, endpoint, run_id)
                    models = {job.model.name: job.model for job in p.jobs}
                    await sender.calibrate(client, list(models.values()))
                    runner_client, sink = sender.client(client), sender.sink(sink)
                    make_request, grade = sender.make_request, sender.grade
                if r.load_sweep is not None:
                    sink = StepSink(sink)
                runner = Runner(
                    settings,
                    client=runner_client,
                    make_request=make_request,
                    sink=sink,
                    rate=gate,
                    grade=grade,
                    observer=monitor.tap(progress),
                    budget=budget,
                    cache=cache,
                    arrivals_s=arrivals,
                    in_flight=monitor.in_flight,
                    start_at_ns=start_at_ns,
                )
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, runner.interrupt)
                monitor.start()
                try:
                    outcome = await run_jobs(runner, p.jobs, r, sink)
                finally:
                    await monitor.stop()
                # the health of the measurement itself: run.json, Parquet metadata, printed
                health = monitor.summary(concurrency=max_in_flight)
                health["dispatch"] = monitor.dispatch()
                health["arrival"] = r.arrival
                # a load sweep's low steps leave slots idle on purpose
                closed_full = (
                    arrivals is None
                    and r.rate is None
                    and r.load_sweep is None
                    and outcome.stop_reason is None
                )
                health["verdict"] = verdict(
                    health,
                    conf.health,
                    open_loop=arrivals is not None,
                    saturating_jobs=closed_full and len(p.jobs) >= 4 * r.concurrency,
                )
                outcome.health = health
                writer.add_metadata("health", json.dumps(health, sort_keys=True))
                return outcome
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await client.aclose()
            if shared is not None:
                await shared.aclose()
            if cache is not None:
                cache.close()

    with asyncio.Runner(loop_factory=loop_factory()) as loop_runner:
        return loop_runner.run(go())


async def run_jobs(runner: Runner, jobs: Sequence[Job], r: Any, sink: Any) -> RunOutcome:
    """All jobs at the run's load, or a load sweep's steps (each a slice of the jobs)."""
    if r.load_sweep is None:
        return await runner.run(jobs)

    def step(chunk: list[Job], concurrency: int | None, arrivals: list[float] | None) -> Any:
        return runner.run(chunk, concurrency=concurrency, arrivals_s=arrivals)

    result = await run_steps(r.load_sweep, jobs, sink, step, seed=r.arrival_seed)
    runner.outcome.load_sweep = result.as_dict(r.load_sweep)
    runner.outcome.load_sweep_text = format_steps(r.load_sweep, result)
    return runner.outcome


def run_in_workers(
    p: Prepared,
    cfg: DictConfig,
    run_dir: Path,
    run_id: str,
    endpoint: Endpoint,
    guard: SpendGuard | None,
    limiter_address: str | None,
    writer: RecordWriter,
) -> RunOutcome:
    """`runner.workers=N`: the run split over N processes (runner/workers.py). The
    workers write the rows; `writer` merges their parts and carries the run's health."""
    r = p.conf.runner
    arrivals = run_arrivals(p)
    work = shares(p.jobs, arrivals, count=r.workers, concurrency=r.concurrency, rate=r.rate,
                  budget_usd=r.budget_usd)  # fmt: skip
    log.info("run %s: %d workers, concurrency %s", run_id, r.workers,
             "+".join(str(w.concurrency) for w in work))  # fmt: skip
    summaries = run_workers(cfg, run_dir, run_id, endpoint.base_url, limiter_address, work,
                            entry=(prepare_share, run_share))  # fmt: skip
    outcome, spent_pico = merge_summaries(summaries)
    if guard is not None:
        guard.spent_pico += spent_pico
    if outcome.health is not None:
        writer.add_metadata("health", json.dumps(outcome.health, sort_keys=True))
    return outcome


def run_share(
    p: Prepared,
    run_dir: Path,
    run_id: str,
    base_url: str,
    limiter_address: str | None,
    share: WorkerShare,
    start_at_ns: int,
) -> dict[str, Any]:
    """In a worker: run its share into its own Parquet parts; the summary for the parent."""
    endpoint = resolve_endpoint(p.conf.endpoint, os.environ, base_url=base_url)
    secrets = [endpoint.credential] if endpoint.credential else []
    if p.judge is not None:
        p.judge.bind(endpoint, run_id, p.conf.runner.retry)
    redact_logs(secrets)
    writer = RecordWriter(
        run_dir,
        metadata={},
        flush_rows=p.conf.records.flush_rows,
        flush_interval_s=p.conf.records.flush_interval_s,
        part_suffix=share.part_suffix,
    )
    guard = (
        SpendGuard(
            budget_pico=round(share.budget_usd * 10**12), max_tokens=p.conf.runner.max_tokens
        )
        if share.budget_usd is not None
        else None
    )
    try:
        outcome = run_loop(p, run_id, endpoint, writer, guard, secrets, limiter_address,
                            share=share, start_at_ns=start_at_ns)  # fmt: skip
    finally:
        writer.close(finalize=False)
    return worker_summary(outcome, share, 0 if guard is None else guard.spent_pico, secrets)


def run_arrivals(p: Prepared) -> list[float] | None:
    """Each job's intended send offset: a trace's recorded times, else the load shape's."""
    r = p.conf.runner
    recorded = p.workload.arrivals_s(p.jobs) if p.workload is not None else None
    if recorded is not None:
        return recorded
    return arrival_offsets_s(r.arrival, r.rate, len(p.jobs), r.arrival_seed)


def loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return None
    return uvloop.new_event_loop


def _fragment(text: str | None) -> orjson.Fragment | None:
    """Per-item JSON (tools, tool_choice, response_format) spliced in as already encoded."""
    return None if text is None else orjson.Fragment(text)


def request_factory(conf: LavabenchConf, endpoint: Endpoint, run_id: str) -> Any:
    headers_by_model: dict[tuple[str, str], dict[str, str]] = {}

    def make_request(job: Job) -> WireRequest:
        key = (job.model.name, job.prompt.dataset)
        headers = headers_by_model.get(key)
        if headers is None:
            headers = endpoint.headers_for(run_id=run_id, model=key[0], dataset=key[1])
            headers_by_model[key] = headers
        params = dict(conf.runner.params)
        if conf.runner.seed is not None:
            params["seed"] = conf.runner.seed + job.repeat
        prompt = job.prompt
        body = chat_body(
            model_id=job.model.id,
            messages=prompt.message_dicts(),
            max_tokens=conf.runner.max_tokens,
            stream=conf.runner.stream,
            params=params,
            tools=_fragment(prompt.tools_json),
            tool_choice=_fragment(prompt.tool_choice_json),
            response_format=_fragment(prompt.response_format_json),
        )
        return WireRequest(url=endpoint.url, headers=headers, body=body, stream=conf.runner.stream)

    return make_request
