"""`lavabench run`: check everything, plan, (resume,) run, and finalize one benchmark run.

Order matters and is the contract with the user: config, catalog, dataset, grader and
references, credentials and budget are all checked before the first request; the records
and run.json are written as the run goes; whatever ends the run (done, 401/402, budget,
Ctrl-C/SIGTERM, a disk error), finished rows are kept and run.json says why it ended.
Only `cli.py` calls this module; it is where the concrete parts are wired together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lavabench import __version__
from lavabench.analysis import per_model_summary, read_columns
from lavabench.cache import SqliteResponseCache
from lavabench.catalog import Catalog, Model, catalog_from_mapping, pico_to_usd
from lavabench.client import HttpClient, WireRequest
from lavabench.config import CONF_DIR, LavabenchConf, load_config, plain
from lavabench.datasets import DatasetSpec, Prompt, dataset_sha256, load_prompts
from lavabench.display import RunProgress, print_summary
from lavabench.endpoints import Endpoint, resolve_endpoint
from lavabench.errors import ConfigError, StoreError
from lavabench.grading import Grade, check_grader
from lavabench.health import HealthMonitor, verdict, verdict_lines
from lavabench.history import add_run
from lavabench.judge import GRADER_NAME as JUDGE_GRADER
from lavabench.judge import Judge, judge_options
from lavabench.limits import StampLimits, limiter_for_run, run_limits
from lavabench.load_sweep import (
    StepSink,
    format_steps,
    max_concurrency,
    run_steps,
    step_sizes,
)
from lavabench.pacing import arrival_offsets_s
from lavabench.plan import Job, plan_jobs
from lavabench.records import SCHEMA_VERSION, Record
from lavabench.redaction import redact_mapping, redact_text
from lavabench.runner import Runner, RunOutcome, RunSettings
from lavabench.spend import SpendGuard, plan_costs
from lavabench.store import RecordWriter, read_records, read_run_json, write_run_json
from lavabench.wire import chat_body
from lavabench.workers import (
    WorkerShare,
    merge_summaries,
    run_workers,
    shares,
    worker_summary,
)

log = logging.getLogger("lavabench")

EXIT_ERROR = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130
PROJECT_DIR = CONF_DIR.parent


@dataclass
class Prepared:
    """Everything checked and planned before any request."""

    conf: LavabenchConf
    catalog: Catalog
    spec: DatasetSpec
    prompts: list[Prompt]
    jobs: list[Job]
    grade: Callable[[Job, Record, str], Awaitable[None]]
    judge: Judge | None = None  # llm_judge: bound to the endpoint once it is resolved


def resolve_data_path(path: str) -> Path:
    """Relative paths resolve against the working directory, then the project directory."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (PROJECT_DIR / candidate).resolve()


def catalog_for_sim(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What the simulator knows of each model: wire id, reasoning, and prices (as strings)
    for its billing read-back."""
    return {
        m.name: {
            "id": m.id,
            "reasoning": m.reasoning,
            "input_usd_per_mtok": str(m.price.input),
            "output_usd_per_mtok": str(m.price.output),
            "cached_input_usd_per_mtok": (
                None if m.price.cached_input is None else str(m.price.cached_input)
            ),
        }
        for m in catalog.models.values()
    }


def run_benchmark(cfg: DictConfig, run_dir: Path) -> int:
    """The whole `run` command for one Hydra job; returns the exit code."""
    p = prepare(cfg)
    run_id = _run_id(run_dir)
    previous: dict[str, Any] | None = None
    if p.conf.resume:
        previous, p.jobs = _resume(run_dir, p)
    if p.conf.runner.dry_run:
        _print_plan(p, run_id)
        return 0
    guard = _budget_guard(p)
    with (
        _endpoint_for_run(p.conf, cfg, p.catalog, p.spec) as endpoint,
        limiter_for_run(p.conf, cfg, _sweep_dir()) as limiter_address,
    ):
        secrets = [endpoint.credential] if endpoint.credential else []
        if p.judge is not None:
            p.judge.bind(endpoint, run_id, p.conf.runner.retry)
        _redact_logs(secrets)
        metadata = _run_metadata(p, cfg, run_id, endpoint, secrets, previous)
        metadata["limits"] = {
            "run_rate_per_s": p.conf.runner.rate if p.conf.runner.arrival == "closed" else None,
            "run_budget_usd": p.conf.runner.budget_usd,
            "shared_limiter": limiter_address,
            "shared_rate_per_s": p.conf.limits.rate,
            "shared_budget_usd": p.conf.limits.budget_usd,
        }
        writer = RecordWriter(
            run_dir,
            metadata={"run": json.dumps(metadata, sort_keys=True, default=str)},
            flush_rows=p.conf.records.flush_rows,
            flush_interval_s=p.conf.records.flush_interval_s,
        )
        write_run_json(run_dir, {**metadata, "status": "running"})
        log.info("run %s: %d requests to %s -> %s", run_id, len(p.jobs), endpoint.kind, run_dir)
        outcome, status, store_error = RunOutcome(), "failed", None
        try:
            if p.conf.runner.workers > 1:
                outcome = _run_in_workers(p, cfg, run_dir, run_id, endpoint, guard,
                                          limiter_address, writer)  # fmt: skip
            else:
                outcome = _run_loop(p, run_id, endpoint, writer, guard, secrets, limiter_address)
            status = _status(outcome)
        except StoreError as exc:
            store_error = exc
        finally:
            try:
                records_path: Path | None = writer.close()
            except StoreError as exc:
                store_error, records_path = store_error or exc, None
            final = _final_info(metadata, p, outcome, status, guard, store_error, secrets)
            with contextlib.suppress(OSError):
                write_run_json(run_dir, final)
    if store_error is not None:
        print(f"lavabench: error: {store_error}", file=sys.stderr)
        return EXIT_ERROR
    _print_end(run_dir, run_id, records_path, p, outcome, secrets)
    if p.conf.history.enabled and not outcome.interrupted:
        history_dir = Path(p.conf.history.dir)
        print(f"history: {len(add_run(run_dir, history_dir))} file(s) in {history_dir}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STOPPED if outcome.fatal is not None or outcome.budget_reached else 0


def prepare(cfg: DictConfig) -> Prepared:
    """Config, catalog, dataset, grader and every reference: all checked, nothing sent."""
    conf = load_config(cfg)
    catalog = catalog_from_mapping(plain(cfg.catalog))
    models = catalog.select(conf.model)
    dataset_conf = plain(cfg.dataset)
    if dataset_conf.get("path"):
        dataset_conf["path"] = str(resolve_data_path(dataset_conf["path"]))
    spec = DatasetSpec.from_mapping(dataset_conf, base_dir=PROJECT_DIR)
    prompts = load_prompts(spec)
    jobs = _plan(conf, models, prompts)
    if spec.grader == JUDGE_GRADER:
        judge = Judge(
            judge_options(spec.grader_options, catalog), catalog, timeouts=conf.runner.timeouts
        )
        return Prepared(conf, catalog, spec, prompts, jobs, judge, judge)
    grader = check_grader(spec.grader, spec.grader_options)
    for prompt in prompts:  # a reference the grader cannot read fails now, not after paying
        if prompt.reference is not None:
            grader("", prompt.reference, spec.grader_options)
    return Prepared(conf, catalog, spec, prompts, jobs, _grade_fn(grader, spec))


def _plan(conf: LavabenchConf, models: list[Model], prompts: list[Prompt]) -> list[Job]:
    """The run's jobs; a load sweep's are sized to its steps (items cycled as repeats)."""
    r = conf.runner
    sweep = r.load_sweep
    if sweep is None:
        return plan_jobs(models, prompts, repeats=r.repeats, warmup_per_model=r.warmup_requests)
    if conf.resume is not None or r.warmup_requests:
        raise ConfigError(
            "load=sweep runs its steps in one go: resume= and runner.warmup_requests do not "
            "apply (start a new run; the first, lowest step warms the connections)"
        )
    total = sum(step_sizes(sweep))
    repeats = max(r.repeats, math.ceil(total / (len(models) * len(prompts))))
    return plan_jobs(models, prompts, repeats=repeats)[:total]


def _run_id(run_dir: Path) -> str:
    """A run's directory name; a sweep job's `<sweep id>-j<job number>`."""
    sweep_dir = _sweep_dir()
    return run_dir.name if sweep_dir is None else f"{sweep_dir.name}-j{HydraConfig.get().job.num}"


def _sweep_dir() -> Path | None:
    """The sweep directory when this run is a job of `lavabench run -m`, else None."""
    from hydra.types import RunMode

    hydra_conf = HydraConfig.get()
    return Path(hydra_conf.sweep.dir) if hydra_conf.mode == RunMode.MULTIRUN else None


def _resume(run_dir: Path, p: Prepared) -> tuple[dict[str, Any], list[Job]]:
    """Keep the items that already have an ok row; plan only the rest."""
    try:
        previous = read_run_json(run_dir)
    except StoreError:
        previous = {}  # killed before run.json was written: nothing to keep (cli checked the dir)
    previous_sha = (previous.get("dataset") or {}).get("sha256")
    if previous_sha and previous_sha != dataset_sha256(p.spec.path):
        raise ConfigError(
            f"resume={p.conf.resume}: the dataset changed since that run ({p.spec.path}); "
            "resume with the same dataset, or start a new run"
        )
    try:
        done = read_records(run_dir).to_pandas()
    except StoreError:
        return previous, p.jobs  # killed before its first flush: nothing to keep
    ok = set(done.loc[done["status"] == "ok", "job_id"])
    remaining = [job for job in p.jobs if job.job_id not in ok]
    log.info("resume %s: %d items done, %d to run", p.conf.resume, len(ok), len(remaining))
    return previous, remaining


def _print_plan(p: Prepared, run_id: str) -> None:
    plans = plan_costs(p.jobs, p.conf.runner.max_tokens)
    print(f"dry run {run_id}: nothing is sent")
    print(
        f"{'model':28s} {'requests':>8s} {'prompt tok (est.)':>18s} {'cost USD low':>13s} {'high':>11s}"
    )
    for name, plan in plans.items():
        print(
            f"{name:28s} {plan.requests:8d} {plan.prompt_tokens:18,d} "
            f"{pico_to_usd(plan.lower_pico):13.6f} {pico_to_usd(plan.upper_pico):11.6f}"
        )
    low = sum(plan.lower_pico for plan in plans.values())
    high = sum(plan.upper_pico for plan in plans.values())
    print(f"{'total':28s} {sum(x.requests for x in plans.values()):8d} "
          f"{sum(x.prompt_tokens for x in plans.values()):18,d} "
          f"{pico_to_usd(low):13.6f} {pico_to_usd(high):11.6f}")  # fmt: skip
    print(
        "prompt tokens: 4 per message + 1 per 4 UTF-8 bytes (estimate); low = prompt at the "
        f"cheapest prompt price, no output; high = prompt + max_tokens={p.conf.runner.max_tokens}"
    )
    if p.conf.runner.budget_usd is not None:
        print(f"budget: {p.conf.runner.budget_usd} USD")


def _budget_guard(p: Prepared) -> SpendGuard | None:
    """Refuse a run that cannot fit even at its lower cost bound; else guard it as it runs.

    Refusing on the upper bound (every answer max_tokens long) would refuse most real runs
    and leave the guard nothing to do; the guard is what keeps spend under the budget.
    """
    budget = p.conf.runner.budget_usd
    if budget is None:
        return None
    budget_pico = round(budget * 10**12)
    plans = plan_costs(p.jobs, p.conf.runner.max_tokens).values()
    low, high = sum(x.lower_pico for x in plans), sum(x.upper_pico for x in plans)
    if low > budget_pico:
        raise ConfigError(
            f"runner.budget_usd={budget}: this run costs at least {pico_to_usd(low):.6f} USD "
            f"({len(p.jobs)} requests, prompts alone). Lower dataset.limit or the model list, "
            "or raise the budget; `lavabench run --dry-run` prints the plan. Nothing was sent."
        )
    if high > budget_pico:
        log.warning(
            "runner.budget_usd=%s is below this run's upper bound (%.6f USD): it stops sending "
            "when the next request could pass the budget",
            budget,
            pico_to_usd(high),
        )
    return SpendGuard(budget_pico=budget_pico, max_tokens=p.conf.runner.max_tokens)


@contextlib.contextmanager
def _endpoint_for_run(
    conf: LavabenchConf, cfg: DictConfig, catalog: Catalog, spec: DatasetSpec
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
    sim_settings["answer_keys"] = sorted({*keys, spec.path})
    with running_simulator(sim_settings, catalog_for_sim(catalog)) as sim:
        yield resolve_endpoint(settings, os.environ, base_url=sim.base_url)


class _RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), self._secrets)
        record.args = None
        return True


def _redact_logs(secrets: list[str]) -> None:
    """Every handler (console, Hydra's log file) passes messages through redaction."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactSecrets(secrets))


def _run_loop(
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
        arrival_offsets_s(r.arrival, r.rate, len(p.jobs), r.arrival_seed)
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
                if r.load_sweep is not None:
                    sink = StepSink(sink)
                runner = Runner(
                    settings,
                    client=client,
                    make_request=_request_factory(conf, endpoint, run_id),
                    sink=sink,
                    rate=gate,
                    grade=p.grade,
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
                    outcome = await _run_jobs(runner, p.jobs, r, sink)
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

    with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
        return loop_runner.run(go())


async def _run_jobs(runner: Runner, jobs: list[Job], r: Any, sink: Any) -> RunOutcome:
    """All jobs at the run's load, or a load sweep's steps (each a slice of the jobs)."""
    if r.load_sweep is None:
        return await runner.run(jobs)

    def step(chunk: list[Job], concurrency: int | None, arrivals: list[float] | None) -> Any:
        return runner.run(chunk, concurrency=concurrency, arrivals_s=arrivals)

    result = await run_steps(r.load_sweep, jobs, sink, step, seed=r.arrival_seed)
    runner.outcome.load_sweep = result.as_dict(r.load_sweep)
    runner.outcome.load_sweep_text = format_steps(r.load_sweep, result)
    return runner.outcome


def _run_in_workers(
    p: Prepared,
    cfg: DictConfig,
    run_dir: Path,
    run_id: str,
    endpoint: Endpoint,
    guard: SpendGuard | None,
    limiter_address: str | None,
    writer: RecordWriter,
) -> RunOutcome:
    """`runner.workers=N`: the run split over N processes (lavabench/workers.py). The
    workers write the rows; `writer` merges their parts and carries the run's health."""
    r = p.conf.runner
    arrivals = arrival_offsets_s(r.arrival, r.rate, len(p.jobs), r.arrival_seed)
    work = shares(p.jobs, arrivals, count=r.workers, concurrency=r.concurrency, rate=r.rate,
                  budget_usd=r.budget_usd)  # fmt: skip
    log.info("run %s: %d workers, concurrency %s", run_id, r.workers,
             "+".join(str(w.concurrency) for w in work))  # fmt: skip
    summaries = run_workers(cfg, run_dir, run_id, endpoint.base_url, limiter_address, work)
    outcome, spent_pico = merge_summaries(summaries)
    if guard is not None:
        guard.spent_pico += spent_pico
    if outcome.health is not None:
        writer.add_metadata("health", json.dumps(outcome.health, sort_keys=True))
    return outcome


def prepare_share(cfg: DictConfig, share: WorkerShare) -> Prepared:
    """In a worker: the run prepared again from the resolved config, cut to its share."""
    p = prepare(cfg)
    by_id = {job.job_id: job for job in p.jobs}
    p.jobs = [by_id[job_id] for job_id in share.job_ids]
    r = p.conf.runner
    r.concurrency, r.rate, r.budget_usd, r.workers = (
        share.concurrency, share.rate, share.budget_usd, 1
    )  # fmt: skip
    return p


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
    _redact_logs(secrets)
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
        outcome = _run_loop(p, run_id, endpoint, writer, guard, secrets, limiter_address,
                            share=share, start_at_ns=start_at_ns)  # fmt: skip
    finally:
        writer.close(finalize=False)
    return worker_summary(outcome, share, 0 if guard is None else guard.spent_pico, secrets)


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return None
    return uvloop.new_event_loop


def _request_factory(conf: LavabenchConf, endpoint: Endpoint, run_id: str) -> Any:
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
        body = chat_body(
            model_id=job.model.id,
            messages=job.prompt.message_dicts(),
            max_tokens=conf.runner.max_tokens,
            stream=conf.runner.stream,
            params=params,
        )
        return WireRequest(url=endpoint.url, headers=headers, body=body, stream=conf.runner.stream)

    return make_request


def _grade_fn(grader: Any, spec: DatasetSpec) -> Callable[[Job, Record, str], Awaitable[None]]:
    """Grade each answer; a `blocking` grader (code execution: 30 ms-5 s a sample) runs in a
    thread so the event loop keeps stamping tokens of the requests in flight."""
    blocking = bool(getattr(grader, "blocking", False))
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2) if blocking else None

    async def grade(job: Job, record: Record, answer_text: str) -> None:
        if job.prompt.reference is None:
            return
        record.grader = spec.grader
        args = (answer_text, job.prompt.reference, spec.grader_options)
        try:
            if pool is not None:
                result: Grade = await asyncio.get_running_loop().run_in_executor(
                    pool, grader, *args
                )
            else:
                result = grader(*args)
        except Exception as exc:  # a grader bug must not lose the response
            record.grade_error = f"{type(exc).__name__}: {exc}"
            return
        record.correct = result.correct
        record.score = result.score
        record.extracted_answer = result.extracted

    return grade


def _status(outcome: RunOutcome) -> str:
    if outcome.interrupted:
        return "interrupted"
    if outcome.fatal is not None or outcome.budget_reached:
        return "stopped"
    return "completed"


def _run_metadata(
    p: Prepared,
    cfg: DictConfig,
    run_id: str,
    endpoint: Endpoint,
    secrets: list[str],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """What run.json and the Parquet metadata say about the run. Never holds a credential."""
    config = plain(cfg)
    config.pop("hydra", None)
    models = sorted({job.model.name for job in p.jobs}) or list(p.conf.model)
    info = {
        "run_id": run_id,
        "lavabench_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "started_at": (previous or {}).get("started_at") or datetime.now(UTC).isoformat(),
        "endpoint": {"kind": endpoint.kind, "url": endpoint.url},
        "simulated": endpoint.kind == "sim",
        "models": models,
        "dataset": {
            "name": p.spec.name,
            "path": p.spec.path,
            "sha256": dataset_sha256(p.spec.path),
            "items": len(p.prompts),
        },
        "prices": p.catalog.prices_table(models),
        "prices_source": p.catalog.prices_source,
        "config": config,
    }
    if previous is not None:
        info["resumed_at"] = [*previous.get("resumed_at", []), datetime.now(UTC).isoformat()]
    return redact_mapping(info, secrets)


def _final_info(
    metadata: dict[str, Any],
    p: Prepared,
    outcome: RunOutcome,
    status: str,
    guard: SpendGuard | None,
    store_error: StoreError | None,
    secrets: list[str],
) -> dict[str, Any]:
    info = {
        **metadata,
        "status": "failed" if store_error is not None else status,
        "stop_reason": redact_text(outcome.stop_reason or "", secrets) or None,
        "finished_at": datetime.now(UTC).isoformat(),
        "requests_planned": len(p.jobs),
        "rows_written": outcome.written,
        "errors": outcome.errors,
        "cached": outcome.cached,
        "not_started": outcome.not_started,
        "cancelled_in_flight": outcome.cancelled_in_flight,
        "circuit_open": {m: redact_text(why, secrets) for m, why in outcome.circuit_open.items()},
        "skipped_by_circuit_breaker": outcome.skipped,
        "elapsed_s": round(outcome.elapsed_s, 3),
        "clock_origin_ns": outcome.clock_origin_ns,
        "load_sweep": outcome.load_sweep,
        "workers": outcome.workers,
        "store_error": None if store_error is None else str(store_error),
        "verdict": (outcome.health or {}).get("verdict", {}).get("status"),
        "health": outcome.health,
    }
    if guard is not None:
        info["budget"] = {
            "budget_usd": str(pico_to_usd(guard.budget_pico)),
            "spent_usd": str(pico_to_usd(guard.spent_pico)),
        }
    return info


def _print_end(
    run_dir: Path,
    run_id: str,
    records_path: Path | None,
    p: Prepared,
    outcome: RunOutcome,
    secrets: list[str],
) -> None:
    sim_note = " (simulated)" if p.conf.endpoint.kind == "sim" else ""
    print_summary(
        per_model_summary(read_columns(run_dir)), title=f"lavabench run {run_id}{sim_note}"
    )
    print(f"records: {records_path}")
    print(f"run:     {run_dir / 'run.json'}")
    if outcome.load_sweep_text:
        print(outcome.load_sweep_text)
    for line in verdict_lines(outcome.health):
        print(line)
    for model, why in outcome.circuit_open.items():
        print(f"paused {model}: {redact_text(why, secrets)} "
              f"({outcome.skipped.get(model, 0)} requests not sent)", file=sys.stderr)  # fmt: skip
    if outcome.interrupted:
        print(
            f"interrupted: {outcome.written} finished rows saved; finish with "
            f"`lavabench run ... resume={run_id}`",
            file=sys.stderr,
        )
    elif outcome.fatal is not None or outcome.budget_reached:
        print(
            f"lavabench: run stopped: {redact_text(outcome.stop_reason or '', secrets)}\n"
            f"  {outcome.written} rows saved, {outcome.not_started} requests not sent.",
            file=sys.stderr,
        )
