"""`lavabench run`'s account of itself: run.json's contents and what is printed at the end.

run.json is written as the run starts and again whatever ends it (done, 401/402, budget,
Ctrl-C/SIGTERM, a disk error); it never holds a credential. The end-of-run table's modules
(analysis, report: pandas, scipy, rich) are imported in `print_end`, not at start-up: a run
that is refused, killed or only dry-run never pays for them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from lavabench import __version__
from lavabench.catalog import pico_to_usd
from lavabench.commands.run.prepared import Prepared
from lavabench.config import plain
from lavabench.datasets.spec import dataset_sha256
from lavabench.errors import StoreError
from lavabench.load.budget import SpendGuard
from lavabench.records.schema import SCHEMA_VERSION
from lavabench.records.verdict import verdict_lines
from lavabench.redaction import redact_mapping, redact_text
from lavabench.runner.loop import RunOutcome
from lavabench.wire.endpoints import Endpoint

if TYPE_CHECKING:  # pandas is imported at the end of a run, not at start-up
    import pandas as pd


def run_status(outcome: RunOutcome) -> str:
    if outcome.interrupted:
        return "interrupted"
    if outcome.fatal is not None or outcome.budget_reached:
        return "stopped"
    return "completed"


def run_metadata(
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
        "dataset": (
            {
                "name": p.spec.name,
                "path": p.spec.path,
                "sha256": dataset_sha256(p.spec.path),
                "items": len(p.prompts),
            }
            if p.spec is not None
            else None
        ),
        "workload": None if p.workload is None else p.workload.describe(),
        "prices": p.catalog.prices_table(models),
        "prices_source": p.catalog.prices_source,
        "config": config,
    }
    if previous is not None:
        info["resumed_at"] = [*previous.get("resumed_at", []), datetime.now(UTC).isoformat()]
    return redact_mapping(info, secrets)


def final_info(
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
    if p.workload is not None:  # calibration and output control are known only now
        info["workload"] = p.workload.describe()
    if guard is not None:
        info["budget"] = {
            "budget_usd": str(pico_to_usd(guard.budget_pico)),
            "spent_usd": str(pico_to_usd(guard.spent_pico)),
        }
    return info


# String columns of the end-of-run table read as categories: a model, dataset, item or
# status name repeats across rows (item_id with repeats; as codes, groupby is cheaper too)
END_OF_RUN_CATEGORIES = ("model", "dataset", "item_id", "status", "error_type", "grader",
                         "grade_status", "cost_source", "finish_reason", "judge_model")  # fmt: skip


def end_of_run_summary(run_dir: Path) -> pd.DataFrame:
    """`per_model_summary` of a run from only the columns it reads, strings as categories,
    one row group at a time (bench_memory, 100,000 rows: reading the columns whole, then
    as pandas, then prepared, added ~70 MB at the run's very end, its peak). The same
    frame as from the full read (tests/records/test_reader.py)."""
    from lavabench.analysis.tables import SUMMARY_INPUTS, per_model_summary_of_batches
    from lavabench.records.reader import iter_columns

    batches = iter_columns(run_dir, SUMMARY_INPUTS, dictionary=END_OF_RUN_CATEGORIES)
    return per_model_summary_of_batches(batches)


def print_end(
    run_dir: Path,
    run_id: str,
    records_path: Path | None,
    p: Prepared,
    outcome: RunOutcome,
    secrets: list[str],
    summary: pd.DataFrame | None = None,
) -> None:
    """The end-of-run table (`summary`, when computed already: `end_of_run_summary`), where
    the rows are, the verdict, and why a run stopped early."""
    from lavabench.analysis.tables import per_model_summary
    from lavabench.records.reader import read_columns
    from lavabench.report.terminal import print_summary
    from lavabench.report.workloads import print_workload_tables

    sim_note = " (simulated)" if p.conf.endpoint.kind == "sim" else ""
    title = f"lavabench run {run_id}{sim_note}"
    if p.workload is None:
        print_summary(end_of_run_summary(run_dir) if summary is None else summary, title=title)
    else:  # the workload tables read the analysis columns: one read for both
        rows = read_columns(run_dir)
        print_summary(per_model_summary(rows), title=title)
        print_workload_tables(rows.to_pandas())
        del rows
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
