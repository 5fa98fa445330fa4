"""`lavabench run` for one Hydra job: the phases in order (setup, execute, info).

Whatever ends the run, finished rows are kept and run.json says why it ended."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lavabench.commands.run.execute import endpoint_for_run, run_in_workers, run_loop
from lavabench.commands.run.fingerprint import run_fingerprint
from lavabench.commands.run.info import (
    end_of_run_summary,
    final_info,
    print_end,
    run_metadata,
    run_status,
)
from lavabench.commands.run.limits import limiter_for_run
from lavabench.commands.run.memory import (
    arrow_pool_restored,
    end_of_run_allocator,
    release_freed_memory,
)
from lavabench.commands.run.setup import budget_guard, prepare, print_plan, resume_jobs
from lavabench.config import plain
from lavabench.errors import StoreError
from lavabench.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED
from lavabench.records.store import RecordWriter, finalize_parts, write_run_json
from lavabench.redaction import redact_logs
from lavabench.runner.loop import RunOutcome

log = logging.getLogger("lavabench")


def run_benchmark(cfg: DictConfig, run_dir: Path) -> int:
    """The whole `run` command for one Hydra job; returns the exit code."""
    with arrow_pool_restored():
        return _run_benchmark(cfg, run_dir)


def _run_benchmark(cfg: DictConfig, run_dir: Path) -> int:
    p = prepare(cfg)
    run_id = run_id_for(run_dir)
    previous: dict[str, Any] | None = None
    fingerprint = run_fingerprint(p, plain(cfg.sim))
    if p.conf.resume:
        previous, p.jobs = resume_jobs(run_dir, p, fingerprint)
    release_freed_memory()  # what loading the dataset freed, before the run's long middle
    if p.conf.runner.dry_run:
        print_plan(p, run_id)
        return 0
    guard = budget_guard(p)
    with (
        endpoint_for_run(p.conf, cfg, p.catalog, p.spec) as endpoint,
        limiter_for_run(p.conf, cfg, sweep_dir_of_job()) as limiter_address,
    ):
        secrets = [endpoint.credential] if endpoint.credential else []
        if p.judge is not None:
            p.judge.bind(endpoint, run_id, p.conf.runner.retry)
        redact_logs(secrets)
        metadata = run_metadata(p, cfg, run_id, endpoint, secrets, previous)
        metadata["fingerprint"] = fingerprint
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
                outcome = run_in_workers(p, cfg, run_dir, run_id, endpoint, guard,
                                          limiter_address, writer)  # fmt: skip
            elif p.conf.runner.adaptive.enabled:
                from lavabench.commands.run.adaptive import run_adaptive  # the data stack

                outcome = run_adaptive(p, run_dir, writer, lambda jobs: run_loop(
                    replace(p, jobs=jobs), run_id, endpoint, writer, guard, secrets,
                    limiter_address), metadata)  # fmt: skip
            else:
                outcome = run_loop(p, run_id, endpoint, writer, guard, secrets, limiter_address)
            status = run_status(outcome)
        except StoreError as exc:
            store_error = exc
        finally:
            # what is left needs the plan's length only: its packed prompts (~100 B an item)
            # go back to the OS before the merge and the end-of-run table (bench_memory)
            p.prompts, p.jobs = (), range(len(p.jobs))  # type: ignore[assignment]
            release_freed_memory()
            end_of_run_allocator()
            summary, records_path = None, None
            try:
                writer.close(finalize=False)
                try:
                    # before the merge, from the parts: the table's rows and the merge's
                    # buffers are never held at once (bench_memory: the run's peak, at 100k)
                    if store_error is None and p.workload is None:
                        summary = end_of_run_summary(run_dir)
                        release_freed_memory()
                finally:
                    records_path = finalize_parts(run_dir, writer.schema)
            except StoreError as exc:
                store_error, records_path = store_error or exc, None
            final = final_info(metadata, p, outcome, status, guard, store_error, secrets)
            with contextlib.suppress(OSError):
                write_run_json(run_dir, final)
    if store_error is not None:
        print(f"lavabench: error: {store_error}", file=sys.stderr)
        return EXIT_ERROR
    release_freed_memory()  # the merge's
    print_end(run_dir, run_id, records_path, p, outcome, secrets, summary)
    if p.conf.history.enabled and not outcome.interrupted:
        from lavabench.records.history import add_run  # pyarrow.dataset: only when asked

        history_dir = Path(p.conf.history.dir)
        print(f"history: {len(add_run(run_dir, history_dir))} file(s) in {history_dir}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STOPPED if outcome.fatal is not None or outcome.budget_reached else 0


def run_id_for(run_dir: Path) -> str:
    """A run's directory name; a sweep job's `<sweep id>-j<job number>`."""
    sweep_dir = sweep_dir_of_job()
    return run_dir.name if sweep_dir is None else f"{sweep_dir.name}-j{HydraConfig.get().job.num}"


def sweep_dir_of_job() -> Path | None:
    """The sweep directory when this run is a job of `lavabench run -m`, else None."""
    from hydra.types import RunMode

    hydra_conf = HydraConfig.get()
    return Path(hydra_conf.sweep.dir) if hydra_conf.mode == RunMode.MULTIRUN else None
