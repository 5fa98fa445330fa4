"""Run history: every nightly run's rows in one hive-partitioned Parquet dataset.

Layout: `<history_dir>/date=YYYY-MM-DD/model=<name>/part-<run_id>.parquet`. Why this shape:
pyarrow.dataset and DuckDB read it directly (`hive_partitioning`), a query for one model or
one week touches only its folders, and one file per (run, model) makes appending idempotent:
adding a run again replaces its files (keyed on run_id; job_id is unique within a run after
`one_row_per_job`), so rerunning the nightly step never duplicates rows.

A "night" is one run, or one sweep: `night` holds the sweep's id for every job of a sweep
(`lavabench run -m` writes one run directory per job), so `history[:N]` means N nights, not
N jobs. Nights are ordered by their earliest start; two runs on one date are two nights.
Rows added before the `night` column existed read as their own run's night. Only the analysis columns are kept (no response text, no token offsets): history is for
statistics, the run directory keeps the rest.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lavabench.errors import StoreError
from lavabench.records.reader import ANALYSIS_COLUMNS, read_columns
from lavabench.records.store import read_run_json
from lavabench.records.sweep_dirs import MANIFEST_FILE

HISTORY_COLUMNS = [
    *ANALYSIS_COLUMNS,
    "job_id",
    "started_at",
    "lava_request_id",
    "response_id",
]
PARTITIONING = ds.partitioning(
    pa.schema([("date", pa.string()), ("model", pa.string())]), flavor="hive"
)


def _verdict(info: dict[str, Any]) -> str | None:
    """The run's measurement-validity verdict (valid|suspect|invalid), wherever run.json keeps it."""
    health = info.get("health") or {}
    verdict = health.get("verdict") if isinstance(health, dict) else None
    if isinstance(verdict, dict):
        verdict = verdict.get("status")
    return str(verdict or info.get("verdict") or "") or None


def run_verdict(info: dict[str, Any]) -> str | None:
    """Public alias: compare shows each run's verdict and refuses to gate on `invalid`."""
    return _verdict(info)


def _run_date(info: dict[str, Any]) -> tuple[str, str]:
    started = info.get("started_at")
    try:
        when = datetime.fromisoformat(str(started)) if started else datetime.now(UTC)
    except ValueError:
        when = datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.date().isoformat(), when.isoformat()


def night_of(run_dir: Path, run_id: str) -> str:
    """The night a run belongs to: its sweep's directory name for a sweep job, else its id."""
    for parent in run_dir.resolve().parents:
        if (parent / MANIFEST_FILE).is_file():
            return parent.name
    return run_id


def _part_name(run_id: str) -> str:
    return f"part-{quote(run_id, safe='')}.parquet"


def add_run(run_dir: Path | str, history_dir: Path | str) -> list[Path]:
    """Append (or replace) one run's rows in the history; returns the files written.

    Idempotent: files of an earlier add of the same run_id are removed first, so adding a
    run twice leaves exactly one copy of each of its job rows.
    """
    run_dir, history_dir = Path(run_dir), Path(history_dir)
    info = read_run_json(run_dir)
    run_id = str(info.get("run_id") or run_dir.name)
    date, started_at = _run_date(info)
    table = read_columns(run_dir, HISTORY_COLUMNS)  # one row per job: the reader's job
    df = table.to_pandas()
    df["run_id"] = run_id
    df["run_started_at"] = started_at
    df["dataset_sha256"] = str((info.get("dataset") or {}).get("sha256", ""))
    df["simulated"] = bool(info.get("simulated"))
    df["verdict"] = _verdict(info)
    df["night"] = night_of(run_dir, run_id)
    name = _part_name(run_id)
    for old in history_dir.glob(f"date=*/model=*/{name}"):
        old.unlink()
    written = []
    for model, rows in df.groupby("model", sort=True):
        folder = history_dir / f"date={date}" / f"model={quote(str(model), safe='')}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        tmp = folder / f".{name}.tmp"
        out = pa.Table.from_pandas(rows.drop(columns=["model"]), preserve_index=False)
        pq.write_table(out, tmp, compression="zstd")
        os.replace(tmp, path)
        written.append(path)
    return written


def read_history(
    history_dir: Path | str,
    *,
    nights: int | None = None,
    exclude_run_ids: tuple[str, ...] = (),
    models: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of the last `nights` nights (newest first by start; a sweep is one night), minus
    runs or nights named in `exclude_run_ids`.

    Columns: the record analysis columns plus date, model, run_started_at, dataset_sha256,
    simulated, verdict, night. Empty history raises StoreError (a baseline cannot be empty).
    """
    history_dir = Path(history_dir)
    files = sorted(history_dir.glob("date=*/model=*/part-*.parquet"))
    if not files:
        raise StoreError(f"no history under {history_dir}: add runs with `lavabench history add`")
    # One schema over every file: parts written before a column existed (`night`) lack it,
    # and pyarrow would otherwise take the first file's schema and drop it from all.
    schemas = [pq.read_schema(f) for f in files]
    schema = pa.unify_schemas([*schemas, PARTITIONING.schema], promote_options="permissive")
    dataset = ds.dataset(history_dir, format="parquet", partitioning=PARTITIONING, schema=schema)
    expr = None
    if models:
        expr = pc.field("model").isin(models)
    table = dataset.to_table(filter=expr)
    df = table.to_pandas()
    if "night" not in df:
        df["night"] = None
    df["night"] = df["night"].astype(object).where(df["night"].notna(), df["run_id"]).astype(str)
    if exclude_run_ids:
        excluded = list(exclude_run_ids)
        df = df[~(df["run_id"].isin(excluded) | df["night"].isin(excluded))]
    if df.empty:
        raise StoreError(f"no history rows under {history_dir} for the requested runs")
    starts = df.groupby("night", sort=False)["run_started_at"].min().reset_index()
    starts = starts.sort_values(["run_started_at", "night"], ascending=False)
    keep = list(starts["night"])[:nights] if nights is not None else list(starts["night"])
    return df[df["night"].isin(keep)].reset_index(drop=True)


def history_runs(history_dir: Path | str) -> pd.DataFrame:
    """One row per run in the history: run_id, run_started_at, date, verdict, rows."""
    df = read_history(history_dir)
    grouped = df.groupby("run_id", sort=False)
    out = grouped.agg(
        run_started_at=("run_started_at", "first"),
        date=("date", "first"),
        verdict=("verdict", "first"),
        rows=("job_id", "size"),
    ).reset_index()
    return out.sort_values("run_started_at", ascending=False).reset_index(drop=True)
