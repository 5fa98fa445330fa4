"""Hydra multirun glue: the sweep's manifest, its shared limiter, and each job's status.

`lavabench run -m model=a,b,c dataset=x,y` is an ordinary Hydra multirun, so any launcher
runs it: the default (one job after another), `hydra/launcher=joblib` (processes on this
machine) or `hydra/launcher=ray` (a local or existing Ray cluster). Three pieces make the
jobs read as one sweep:

- `SweepCallback` runs in the process that launched the sweep: before the jobs it lists
  them in `manifest.json` and, when `limits.rate` or `limits.budget_usd` is set, starts the
  account-wide limiter (lavabench.load.limiter) and writes its address to `limiter.json`; after
  them it writes the final manifest and the limiter's statistics.
- `run_job` wraps one job wherever it runs: it writes the job's `job.json` when it starts
  and when it ends, and never lets an exception escape (Hydra would otherwise stop the
  sweep at the first failing job and write no manifest), so a failed job is reported
  beside the others instead of hiding them.
- the job directory layout is conf/config.yaml's `hydra.sweep.subdir` (records/sweep_dirs.py).

The callback object is pickled to joblib and Ray workers with Hydra's context, so it keeps
no thread or socket itself: the running limiter lives in a module-level table.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lavabench.errors import LavabenchError
from lavabench.exit_codes import DECIDED_NO, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED
from lavabench.load.limiter import LIMITER_FILE, LimiterServer, LimiterState
from lavabench.records.store import RUN_FILE, read_run_json, write_json_atomic
from lavabench.records.sweep_dirs import (
    MANIFEST_FILE,
    build_manifest,
    read_manifest,
    write_job_status,
    write_manifest,
)

log = logging.getLogger("lavabench")

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
_LIMITERS: dict[str, LimiterServer] = {}  # sweep dir -> its running limiter (launching process)
_LAST_MANIFEST: dict[str, Any] = {}  # the manifest of the sweep this process just launched


class SweepCallback(Callback):
    """Manifest and shared limiter of a sweep; does nothing for a single run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        limits = config.limits
        address = limits.address
        if address is None and (limits.rate is not None or limits.budget_usd is not None):
            budget = None if limits.budget_usd is None else round(limits.budget_usd * 10**12)
            server = LimiterServer(LimiterState(limits.rate, budget), host=str(limits.host))
            address = server.start()
            _LIMITERS[str(sweep_dir)] = server
            log.info("sweep limiter at %s: rate %s/s, budget %s USD",
                     address, limits.rate, limits.budget_usd)  # fmt: skip
        if address is not None:
            write_json_atomic(sweep_dir / LIMITER_FILE, {"address": address})
        base = {
            "created_at": datetime.now(UTC).isoformat(),
            "launcher": str(OmegaConf.select(config, "hydra.launcher._target_")),
            "launched_by": {"host": socket.gethostname(), "pid": os.getpid()},
            "overrides": list(config.hydra.overrides.task),
            "limits": {
                "rate_per_s": limits.rate,
                "budget_usd": limits.budget_usd,
                "limiter": address,
            },
        }
        write_manifest(sweep_dir, build_manifest(sweep_dir, planned_jobs(config), base=base))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        server = _LIMITERS.pop(str(sweep_dir), None)
        manifest = read_manifest(sweep_dir)
        base = {k: v for k, v in manifest.items() if k not in ("jobs", "status_counts")}
        if server is not None:
            base["limiter_stats"] = server.stop()
        planned = [{"num": j["num"], "overrides": j.get("overrides", [])} for j in manifest["jobs"]]
        final = build_manifest(sweep_dir, planned, base=base, finished=True)
        write_manifest(sweep_dir, final)
        _LAST_MANIFEST.clear()
        _LAST_MANIFEST.update(final, path=str(sweep_dir / MANIFEST_FILE))


def last_manifest() -> dict[str, Any]:
    """The final manifest of the sweep this process launched (empty if none)."""
    return dict(_LAST_MANIFEST)


def planned_jobs(config: DictConfig) -> list[dict[str, Any]] | None:
    """The jobs Hydra's basic sweeper will launch, numbered as it numbers them.

    Other sweepers (Optuna, Ax) choose their jobs as they go: then the manifest lists the
    jobs from their own job.json files only.
    """
    if OmegaConf.select(config, "hydra.sweeper._target_") != _BASIC_SWEEPER:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, None)
    jobs = [list(overrides) for batch in batches for overrides in batch]
    return [{"num": num, "overrides": overrides} for num, overrides in enumerate(jobs)]


def run_job(job_dir: Path, num: int, overrides: list[str], run: Callable[[], int]) -> int:
    """One sweep job: job.json at start and end; every failure reported, none raised."""
    started = datetime.now(UTC).isoformat()
    info: dict[str, Any] = {
        "num": num,
        "overrides": overrides,
        "status": "running",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started,
    }
    job_dir.mkdir(parents=True, exist_ok=True)
    write_job_status(job_dir, info)
    error: str | None = None
    try:
        code = run()
    except LavabenchError as exc:
        code, error = EXIT_ERROR, str(exc)
        print(f"lavabench: error: job {num}: {exc}", flush=True)
    except Exception as exc:  # a bug of ours: report it with the job, keep the sweep going
        code, error = DECIDED_NO, f"{type(exc).__name__}: {exc}"
        log.error("job %d crashed:\n%s", num, traceback.format_exc())
    write_job_status(job_dir, {**info, **_job_outcome(job_dir, code, error)})
    return code


def _job_outcome(job_dir: Path, code: int, error: str | None) -> dict[str, Any]:
    run: dict[str, Any] = {}
    if (job_dir / RUN_FILE).is_file():
        try:
            run = read_run_json(job_dir)
        except (LavabenchError, ValueError):
            run = {}
    if code == DECIDED_NO and error is not None:
        status = "crashed"
    elif code == EXIT_ERROR:
        status = "failed"
    elif code == EXIT_INTERRUPTED:
        status = "interrupted"
    elif code == EXIT_STOPPED:
        status = "stopped"
    else:
        status = "completed"
    return {
        "status": status,
        "exit_code": code,
        "error": error or run.get("stop_reason") or run.get("store_error"),
        "run_id": run.get("run_id"),
        "models": run.get("models"),
        "dataset": (run.get("dataset") or {}).get("name"),
        "rows": run.get("rows_written"),
        "errors": run.get("errors"),
        "verdict": run.get("verdict"),
        "finished_at": datetime.now(UTC).isoformat(),
    }
