"""`runner.workers=N`: N client processes, each with its own event loop and a share of the load.

One Python event loop tops out at a few thousand streamed requests/s on one core, and its
lag grows with the streams it holds (`make bench`: the loop's lag p99 and TTFT error rise
with concurrency). With N workers the parent process plans and checks the run as usual,
then hands each worker a share:

- jobs: job i goes to worker i mod N (so every worker sees every model, interleaved);
- concurrency: split as evenly as possible (the shares sum to `runner.concurrency`);
- open loop: the run's one arrival schedule, each worker sending its own jobs' slots;
- `runner.rate` (closed-loop cap) and `runner.budget_usd`: split evenly (each worker
  holds its share, so the run as a whole holds the limit);
- one clock origin, chosen by the parent once every worker is ready and given to all, so
  the rows' `*_ns` stamps share one timeline (perf_counter_ns is CLOCK_MONOTONIC on Linux,
  one clock for every process on the machine);
- each worker writes its own Parquet parts (`part-NNNNNN-wK.parquet`) into the run's
  records.parts/; the parent merges them at the end as for one process. A worker that
  dies loses only its unflushed second, like a crashed run, and `resume=` redoes it.

Each worker measures its own loop (lag, CPU, in flight) and gives its verdict; run.json
keeps every worker's summary under `workers`, and the run's verdict is the worst one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lavabench import errors
from lavabench.errors import ConfigError, GatewayError
from lavabench.records.verdict import severity
from lavabench.redaction import redact_text
from lavabench.runner.loop import RunOutcome
from lavabench.runner.plan import Job

_START_DELAY_NS = 500_000_000  # the origin lies this far ahead of "all ready" (0.5 s): each
# worker still builds its loop, client and samplers after saying ready (measured: 0.1 s
# left the first requests up to 80 ms late)


# What a worker process runs: (prepare its share from the config, run the prepared share).
# The command passes both (commands/run), so runner/ never imports the command that uses it;
# they must be module-level functions, since a spawned worker receives them by pickling.
WorkerEntry = tuple[Callable[[DictConfig, "WorkerShare"], Any], Callable[..., dict[str, Any]]]


@dataclass(frozen=True)
class WorkerShare:
    """What one worker runs: its jobs (by id, in order), their open-loop send offsets
    (seconds after the shared origin; None = closed loop) and its slice of the limits."""

    index: int
    count: int
    job_ids: tuple[str, ...]
    arrivals_s: tuple[float, ...] | None
    concurrency: int
    rate: float | None
    budget_usd: float | None

    @property
    def part_suffix(self) -> str:
        return f"-w{self.index}"


def shares(
    jobs: Sequence[Job],
    arrivals_s: list[float] | None,
    *,
    count: int,
    concurrency: int,
    rate: float | None,
    budget_usd: float | None,
) -> list[WorkerShare]:
    """Split a run into `count` shares (pure: tested without processes)."""
    if count > concurrency:
        raise ConfigError(
            f"runner.workers={count} > runner.concurrency={concurrency}: every worker needs "
            "at least one request in flight"
        )
    out = []
    for k in range(count):
        mine = jobs[k::count]
        out.append(
            WorkerShare(
                index=k,
                count=count,
                job_ids=tuple(job.job_id for job in mine),
                arrivals_s=None if arrivals_s is None else tuple(arrivals_s[k::count]),
                concurrency=concurrency // count + (1 if k < concurrency % count else 0),
                rate=None if rate is None else rate / count,
                budget_usd=None if budget_usd is None else budget_usd / count,
            )
        )
    return out


def resolved_copy(cfg: DictConfig) -> DictConfig:
    """The config with every interpolation resolved, so a worker sees the same run id,
    time stamps and paths as the parent (`${now:...}` would differ in another process)."""
    copy = cfg.copy()
    OmegaConf.resolve(copy)
    return copy


def run_workers(
    cfg: DictConfig,
    run_dir: Path,
    run_id: str,
    base_url: str,
    limiter_address: str | None,
    work: list[WorkerShare],
    entry: WorkerEntry,
) -> list[dict[str, Any]]:
    """Start the workers, release them together, and return each one's summary.

    Ctrl-C reaches the workers from the terminal; SIGTERM to this process is forwarded.
    Either way every worker saves what finished and reports, as one process would."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    resolved = resolved_copy(cfg)
    procs, conns = [], []
    for share in work:
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main,
            args=(
                child_end,
                resolved,
                str(run_dir),
                run_id,
                base_url,
                limiter_address,
                share,
                entry,
            ),
            name=f"lavabench-worker-{share.index}",
        )
        proc.start()
        child_end.close()
        procs.append(proc)
        conns.append(parent_end)

    def forward(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ready = [_receive(conn, share) for conn, share in zip(conns, work, strict=True)]
        failed = [r for r in ready if r.get("status") == "failed"]
        start_at_ns = time.perf_counter_ns() + _START_DELAY_NS
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(None if failed else start_at_ns)
        if failed:
            raise ConfigError(f"a worker could not start: {failed[0]['error']}")
        results = [_receive(conn, share) for conn, share in zip(conns, work, strict=True)]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return results


def _receive(conn: Connection, share: WorkerShare) -> dict[str, Any]:
    """The worker's next message; a worker that died says so instead of hanging the run."""
    while True:
        try:
            message: dict[str, Any] = conn.recv()
            return message
        except InterruptedError:
            continue
        except EOFError:
            return {
                "worker": share.index,
                "status": "failed",
                "error": f"worker {share.index} ended without a report (killed?)",
            }


def worker_main(
    conn: Connection,
    cfg: DictConfig,
    run_dir: str,
    run_id: str,
    base_url: str,
    limiter_address: str | None,
    share: WorkerShare,
    entry: WorkerEntry,
) -> None:
    """A worker process: prepare its share, wait for the origin, run it, report."""
    # the parent decides when the run stops; Ctrl-C is handled by the run's own handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_share, run_share = entry

    try:
        prepared = prepare_share(cfg, share)
    except Exception as exc:
        conn.send({"worker": share.index, "status": "failed", "error": f"{exc}"})
        return
    conn.send({"worker": share.index, "status": "ready"})
    start_at_ns = conn.recv()
    if start_at_ns is None:
        return
    try:
        summary = run_share(prepared, Path(run_dir), run_id, base_url, limiter_address, share,
                            start_at_ns)  # fmt: skip
    except Exception as exc:
        summary = {
            "worker": share.index,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    conn.send(summary)


# --- a worker's summary: made in the worker, merged in the parent ------------------------

_COUNTS = ("written", "errors", "cached", "not_started", "cancelled_in_flight")


def worker_summary(
    outcome: RunOutcome, share: WorkerShare, spent_pico: int, secrets: list[str]
) -> dict[str, Any]:
    """What a worker reports to the parent (picklable, credentials redacted)."""
    fatal = outcome.fatal
    return {
        "worker": share.index,
        "status": "done",
        "pid": os.getpid(),
        "concurrency": share.concurrency,
        "jobs": len(share.job_ids),
        **{name: getattr(outcome, name) for name in _COUNTS},
        "elapsed_s": outcome.elapsed_s,
        "interrupted": outcome.interrupted,
        "budget_reached": outcome.budget_reached,
        "fatal": None
        if fatal is None
        else {
            "kind": fatal.kind,
            "message": redact_text(fatal.message, secrets),
            "http_status": fatal.http_status,
        },
        "circuit_open": {m: redact_text(w, secrets) for m, w in outcome.circuit_open.items()},
        "skipped": outcome.skipped,
        "clock_origin_ns": outcome.clock_origin_ns,
        "spent_pico": spent_pico,
        "health": outcome.health,
    }


def merge_summaries(summaries: list[dict[str, Any]]) -> tuple[RunOutcome, int]:
    """The run's outcome from its workers' summaries, and what they spent (pico-USD).

    A worker that failed stops the run as a fatal error: its rows so far are kept, and
    `resume=` runs the rest."""
    failed = [s for s in summaries if s.get("status") == "failed"]
    if failed and len(failed) == len(summaries):
        raise ConfigError(f"every worker failed; first: {failed[0]['error']}")
    outcome = RunOutcome(clock_origin_ns=min(s.get("clock_origin_ns", 0) for s in summaries))
    spent_pico = 0
    for s in summaries:
        for name in _COUNTS:
            setattr(outcome, name, getattr(outcome, name) + int(s.get(name, 0)))
        outcome.elapsed_s = max(outcome.elapsed_s, float(s.get("elapsed_s", 0.0)))
        outcome.interrupted = outcome.interrupted or bool(s.get("interrupted"))
        outcome.budget_reached = outcome.budget_reached or bool(s.get("budget_reached"))
        outcome.fatal = outcome.fatal or fatal_from(s.get("fatal"))
        outcome.circuit_open.update(s.get("circuit_open") or {})
        for model, n in (s.get("skipped") or {}).items():
            outcome.skipped[model] = outcome.skipped.get(model, 0) + n
        spent_pico += int(s.get("spent_pico", 0))
    if failed:
        outcome.fatal = outcome.fatal or GatewayError(f"worker failed: {failed[0]['error']}")
    outcome.health = worst_health(summaries)
    outcome.workers = [{k: v for k, v in s.items() if k != "traceback"} for s in summaries]
    return outcome, spent_pico


def fatal_from(summary: dict[str, Any] | None) -> GatewayError | None:
    """Rebuild the GatewayError a worker stopped on (kind, message, status)."""
    if not summary:
        return None
    kinds = {
        cls.kind: cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, GatewayError)
    }
    cls = kinds.get(summary["kind"], GatewayError)
    return cls(summary["message"], http_status=summary.get("http_status"))


def worst_health(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The health of the worker with the worst verdict: the run's own (the rest in run.json)."""
    healths = [s["health"] for s in summaries if s.get("health")]
    if not healths:
        return None
    return max(healths, key=lambda h: severity(h.get("verdict", {}).get("status")))
